"""Filling the model cache volume once: the bundles' catalogue and layout, verified resumable downloads from
Hugging Face (or a mirror) and S3, the manifest, and `boltz-worker populate`."""
