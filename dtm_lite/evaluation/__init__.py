"""Evaluation: FD-PCA, the object metric, autocorrelation, the picture files a run writes (grids, GIFs), the
ablation and a run's re-evaluation, and the bridge to Extropic's thrml (a sampler oracle)."""
