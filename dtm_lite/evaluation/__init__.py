"""Evaluation: FD-PCA, the object metric, autocorrelation, the ablation and a run's re-evaluation, and the bridge
to Extropic's thrml (a sampler oracle)."""
