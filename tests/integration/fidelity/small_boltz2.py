"""Random-initialised, small Boltz-2 checkpoints: real files that `boltz predict` loads and runs, on CPU, in
seconds. Run inside the boltz venv (boltz_side.py `checkpoints`). The predictions mean nothing; the contract
(cache layout, loading, inference, output files and their keys) is boltz's own.

The hyperparameters follow the boltz repository's scripts/train/configs/structurev2.yaml, made narrow (token and
atom widths, depths). The CLI overrides pairformer_args with its own (64 blocks, 16 heads), msa_args,
diffusion_process_args and steering_args when it loads a checkpoint, so those come from boltz itself; 16 heads
means token_s must be a multiple of 16.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

SEED = 20250101

TRAINING_ARGS = {
    "recycling_steps": 3, "sampling_steps": 20, "diffusion_multiplicity": 1, "diffusion_samples": 1,
    "affinity_loss_weight": 3e-3, "confidence_loss_weight": 1e-4, "diffusion_loss_weight": 4.0,
    "distogram_loss_weight": 3e-2, "bfactor_loss_weight": 1e-3, "adam_beta_1": 0.9, "adam_beta_2": 0.95,
    "adam_eps": 1e-8, "lr_scheduler": "af3", "base_lr": 0.0, "max_lr": 5e-4, "lr_warmup_no_steps": 1000,
    "lr_start_decay_after_n_steps": 50000, "lr_decay_every_n_steps": 50000, "lr_decay_factor": 0.95,
    "weight_decay": 3e-3, "weight_decay_exclude": True,
}  # fmt: skip
VALIDATION_ARGS = {"recycling_steps": 3, "sampling_steps": 200, "diffusion_samples": 5, "symmetry_correction": True}
SMALL_PAIRFORMER = {"num_blocks": 1, "num_heads": 16, "dropout": 0.0, "post_layer_norm": False,
                    "activation_checkpointing": False, "v2": True}  # fmt: skip


def hyperparameters(kind: str) -> dict:
    from boltz.main import Boltz2DiffusionParams, MSAModuleArgs, PairformerArgsV2
    from omegaconf import OmegaConf

    common = {
        "atom_s": 32, "atom_z": 8, "token_s": 32, "token_z": 16, "num_bins": 64, "atom_feature_dim": 388,
        "atoms_per_window_queries": 32, "atoms_per_window_keys": 128,
        "ema": False, "exclude_ions_from_lddt": True, "fix_sym_check": True, "cyclic_pos_enc": True,
        "bond_type_feature": True, "conditioning_cutoff_min": 4.0, "conditioning_cutoff_max": 20.0,
        "use_templates": True, "use_templates_v2": True, "predict_bfactor": True,
        "checkpoint_diffusion_conditioning": False,
        "embedder_args": {"atom_encoder_depth": 1, "atom_encoder_heads": 4, "add_mol_type_feat": True,
                          "add_method_conditioning": True, "add_modified_flag": True, "add_cyclic_flag": True},
        "msa_args": asdict(MSAModuleArgs()),
        "template_args": {"template_dim": 16, "template_blocks": 1, "activation_checkpointing": False},
        "pairformer_args": asdict(PairformerArgsV2()),
        "score_model_args": {"sigma_data": 16, "dim_fourier": 32, "atom_encoder_depth": 1, "atom_encoder_heads": 4,
                             "token_transformer_depth": 1, "token_transformer_heads": 16, "atom_decoder_depth": 1,
                             "atom_decoder_heads": 4, "conditioning_transition_layers": 1,
                             "transformer_post_ln": False, "activation_checkpointing": False},
        "diffusion_process_args": asdict(Boltz2DiffusionParams()),
        "diffusion_loss_args": {"add_smooth_lddt_loss": True, "nucleotide_loss_weight": 5.0,
                                "ligand_loss_weight": 10.0, "filter_by_plddt": 0.0},
        # Boltz2 reads these as attributes (hydra hands it DictConfigs, and the released checkpoints keep them).
        "training_args": OmegaConf.create(TRAINING_ARGS),
        "validation_args": OmegaConf.create(VALIDATION_ARGS),
        "structure_prediction_training": False,
    }  # fmt: skip
    # Both models carry the confidence head: the affinity model ranks its samples by iptm.
    confidence = {
        "confidence_prediction": True,
        "alpha_pae": 1.0,  # > 0: the PAE head, and with it ptm/iptm in confidence_*.json
        "confidence_model_args": {
            "pairformer_args": SMALL_PAIRFORMER, "num_dist_bins": 64, "max_dist": 22,
            "add_s_to_z_prod": True, "add_s_input_to_s": True, "add_z_input_to_z": True,
            "maximum_bond_distance": 0,
            "confidence_args": {"num_plddt_bins": 50, "num_pde_bins": 64, "num_pae_bins": 64},
        },
    }  # fmt: skip
    if kind == "conf":
        return {**common, **confidence, "affinity_prediction": False}
    affinity_module = {
        "pairformer_args": {**SMALL_PAIRFORMER, "pairwise_head_width": 32, "pairwise_num_heads": 4},
        "transformer_args": {"token_s": 32, "num_blocks": 1, "num_heads": 4, "activation_checkpointing": False},
        "num_dist_bins": 64, "max_dist": 22,
    }  # fmt: skip
    return {
        **common,
        **confidence,
        "affinity_prediction": True,
        "affinity_ensemble": True,
        "affinity_mw_correction": True,
        "affinity_model_args1": affinity_module,
        "affinity_model_args2": affinity_module,
    }


def write_checkpoints(out: Path) -> dict:
    """boltz2_conf.ckpt and boltz2_aff.ckpt in `out`, as Lightning checkpoints (state_dict + hyper_parameters)."""
    import pytorch_lightning
    import torch
    from boltz.model.models.boltz2 import Boltz2

    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for kind in ("conf", "aff"):
        torch.manual_seed(SEED)
        hparams = hyperparameters(kind)
        model = Boltz2(**hparams)
        checkpoint = {
            "state_dict": model.state_dict(),
            "hyper_parameters": dict(model.hparams),
            "pytorch-lightning_version": pytorch_lightning.__version__,
            "epoch": 0,
            "global_step": 0,
        }
        path = out / f"boltz2_{kind}.ckpt"
        tmp = path.with_suffix(".tmp")
        torch.save(checkpoint, tmp)
        tmp.replace(path)
        written[path.name] = {
            "bytes": path.stat().st_size,
            "parameters": sum(p.numel() for p in model.parameters()),
        }
    return written
