"""Boltz-2 runs: `boltz-worker predict`, the `boltz predict` command line, and the judgement of its outputs."""
