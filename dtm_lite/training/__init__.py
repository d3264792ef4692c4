"""The training loop (``train_from_iterator``: epochs, penalty updates, evaluation), checkpoints and atomic file
writes."""
