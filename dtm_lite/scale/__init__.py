"""Running on many devices and hosts: the chain mesh (sharding) and ``batch_size="auto"``."""
