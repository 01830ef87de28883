"""Run INSIDE the boltz venv by test_fidelity_prepare.py: does boltz 2.2.1 keep an MSA, or silently replace it?

  msa-kept MOL_DIR CASES.json   CASES: {name: yaml path}; each YAML has one protein chain with an MSA file. The
                                chain is parsed (parse_yaml), its MSA read (parse_a3m / parse_csv), tokenized
                                (Boltz2Tokenizer) and paired by boltz's own featurizer
                                (featurizerv2.construct_paired_msa), which prints "MSA does not match input
                                sequence, creating dummy" when it drops the MSA. Answers {name: {kept, shape}}
                                (shape: the paired MSA's, a dummy has one sequence).
Standard library, numpy and boltz only; the answer is the last line on stdout.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path


def msa_kept(mol_dir: Path, cases: dict[str, str]) -> dict:
    import boltz.main  # noqa: F401 (first, as under `boltz predict`)
    import numpy as np
    from boltz.data.feature.featurizerv2 import construct_paired_msa
    from boltz.data.mol import load_canonicals
    from boltz.data.parse.a3m import parse_a3m
    from boltz.data.parse.csv import parse_csv
    from boltz.data.parse.yaml import parse_yaml
    from boltz.data.tokenize.boltz2 import Boltz2Tokenizer
    from boltz.data.types import Input

    ccd = load_canonicals(str(mol_dir))
    answers = {}
    for name, path in cases.items():
        target = parse_yaml(Path(path), dict(ccd), mol_dir, boltz2=True)
        [chain] = target.record.chains
        msa_path = Path(chain.msa_id)
        msa = parse_a3m(msa_path, taxonomy=None) if msa_path.suffix == ".a3m" else parse_csv(msa_path)
        data = Input(target.structure, {chain.chain_id: msa}, record=target.record)
        tokenized = Boltz2Tokenizer().tokenize(data)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            paired = construct_paired_msa(tokenized, np.random.default_rng(0), max_seqs=8192)
        kept = "MSA does not match input sequence" not in printed.getvalue()
        answers[name] = {"kept": kept, "shape": list(paired[0].shape)}
    return answers


if __name__ == "__main__":
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        result = msa_kept(Path(sys.argv[2]), json.loads(Path(sys.argv[3]).read_text()))
    out.write(json.dumps(result) + "\n")
