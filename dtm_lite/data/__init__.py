"""Data sources: the streaming loaders (``IteratorDataLoader``, ``TransitionLoader``) and LunarLander frames."""
