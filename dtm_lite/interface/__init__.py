"""What people touch: the command line, plots and figures, the notebook widgets, and ``code_map`` (the package's
architecture read from its source)."""
