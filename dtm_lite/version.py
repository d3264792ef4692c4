"""The package version (checkpoints name it in their errors)."""

__version__ = "0.1.0"
