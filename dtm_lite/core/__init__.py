"""The core of a DTM (Jelinčič et al., arXiv 2510.23972): the grid graph, the encoding of frames into bits, the
noise process, the block-Gibbs sampler, one training step and the denoising chain. Imports nothing outside
``dtm_lite.core``. Read first: ``sampler.py`` with ``gibbs_reference.py``, then ``train_step.py``,
``generation.py`` and ``conditioner.py``."""
