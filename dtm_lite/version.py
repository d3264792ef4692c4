"""The package version (``pyproject.toml`` reads it; checkpoints name it in their errors)."""

__version__ = "0.1.0"
