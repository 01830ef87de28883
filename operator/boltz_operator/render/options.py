"""BoltzPrediction spec -> the `boltz predict` options in run.json."""

from __future__ import annotations

from boltz_contract import PredictOptions

from ..api.prediction import BoltzPredictionSpec


def server_msa_chains(spec: BoltzPredictionSpec) -> list[str]:
    """Protein chains whose MSA the MSA server computes (no msa, or msa.server: true)."""
    return [
        chain
        for entry in spec.sequences
        if entry.protein is not None and (entry.protein.msa is None or entry.protein.msa.server)
        for chain in entry.protein.ids
    ]


def predict_options(spec: BoltzPredictionSpec) -> PredictOptions:
    o = spec.options
    server = spec.msa_server
    return PredictOptions(
        recycling_steps=o.recycling_steps,
        sampling_steps=o.sampling_steps,
        diffusion_samples=o.diffusion_samples,
        max_parallel_samples=o.max_parallel_samples,
        step_scale=o.step_scale,
        output_format=o.output_format.value,
        use_potentials=o.use_potentials,
        seed=o.seed,
        sampling_steps_affinity=o.affinity.sampling_steps,
        diffusion_samples_affinity=o.affinity.diffusion_samples,
        affinity_mw_correction=o.affinity.mw_correction,
        use_msa_server=bool(server_msa_chains(spec)),
        msa_server_url=server.url if server else None,
        msa_pairing_strategy=server.pairing_strategy.value if server else "greedy",
        msa_api_key_header=server.api_key_header if server else None,
        max_msa_seqs=o.max_msa_seqs,
        subsample_msa=o.subsample_msa,
        num_subsampled_msa=o.num_subsampled_msa,
        use_kernels=o.use_kernels,
    )
