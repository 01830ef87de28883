"""BoltzScreen's three worker commands (boltz_contract.screen): screen-prepare, screen-shard, screen-rank.

Modules by concern: library (the library read, capped and checked for ids), chemistry (what runs where RDKit and
boltz are importable: SMILES checked by boltz's own rules, SDF read), slices (the shard slices and rejected rows in
the results store), target (the target YAML's placeholder ligand, and each ligand's input made from it), table
(LigandRow CSV, a row from boltz's output files), progress (a running shard's periodic uploads and what a re-run
skips), shard_outcomes (what boltz's output says of each ligand and of a dead boltz), ranking (the order of
the ranked table), screen_prepare / screen_shard / screen_rank (the commands).

Only chemistry runs in the process that imports boltz; it uses the standard library, RDKit and boltz only.
"""
