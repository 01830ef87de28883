"""`kubectl boltz design` round trip, judged by boltzgen 0.3.2 itself: design specs written in boltzgen's own
spelling (snake_case, `id:`, a relative `path:` to the target beside the spec) are converted by the plugin into a
BoltzGenCampaign (target in its inputs ConfigMap), rendered by the operator as the campaign's ConfigMap holds the
spec, and boltzgen's YamlDesignParser reads the original and the rendered spec: every chain (type, residues and
their numbers and names, which are designed, binding types, secondary structure, structure groups, amino-acid
constraints...) must be the same. Sampled lengths are seeded alike on both sides (boltzgen_side.seed)."""

from __future__ import annotations

import posixpath
import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from boltz_kubectl.inputs.boltzgen import convert_design_spec
from boltz_kubectl.manifests import build_campaign
from boltz_operator.api.campaign import BoltzGenCampaignSpec
from boltz_operator.builders.campaign import SPEC_FILE
from boltz_operator.render.boltzgen_yaml import render_design_spec
from support.fidelity import TARGET, relocate

# Our own specs against 3CH4 (label chain A, label_seq_id 1..202), in boltzgen's spelling.
SPECS = {
    "binder": """
        entities:
          - protein:
              id: G
              sequence: 60..80
              secondary_structure: {helix: 1..10}
          - file:
              path: target/3ch4.cif
              include:
                - chain: {id: A, res_index: 1..150}
              exclude:
                - chain: {id: A, res_index: 100..110}
              binding_types:
                - chain: {id: A, binding: "40..45,52", not_binding: 1..10}
              structure_groups:
                - group: {id: all, visibility: 1}
                - group: {id: A, res_index: 120..150, visibility: 0}
        """,
    "redesign": """
        entities:
          - file:
              path: ./target/3ch4.cif
              include: all
              design:
                - chain: {id: A, res_index: 20..25}
              not_design:
                - chain: {id: A, res_index: 22}
              secondary_structure:
                - chain: {id: A, helix: 20..21, loop: 23..25}
              design_insertions:
                - insertion: {id: A, res_index: 30, num_residues: 3..5}
        """,
    "cyclic-peptide": """
        entities:
          - protein:
              id: P
              sequence: 3C6C3
              cyclic: true
              residue_constraints:
                - {position: 1..3, allowed: AGS}
                - {position: 5, disallowed: CM}
          - ligand: {id: [M, N], ccd: SAH}
          - file:
              path: target/3ch4.cif
              include:
                - chain: {id: A}
              binding_types:
                - chain: {id: A, binding: 40..45}
        constraints:
          - bond: {atom1: [P, 4, SG], atom2: [P, 11, SG]}
        """,
}


@pytest.fixture(scope="module")
def parsed(boltzgen_side, boltzgen_mols, tmp_path_factory) -> dict[tuple[str, str], dict]:
    root = tmp_path_factory.mktemp("design-round-trip")
    paths = {}
    for name, text in SPECS.items():
        folder = root / name / "user"
        (folder / "target").mkdir(parents=True)
        shutil.copyfile(TARGET, folder / "target" / "3ch4.cif")
        original = folder / f"{name}.yaml"
        original.write_text(textwrap.dedent(text))
        paths[(name, "original")] = original
        paths[(name, "rendered")] = render(original, root / name / "rendered")
    answers = boltzgen_side("parse", boltzgen_mols, root / "work", *paths.values())
    return {key: answers[str(path)] for key, path in paths.items()}


def render(original: Path, case: Path) -> Path:
    """The plugin's campaign for `original`, its spec rendered as the operator does, the ConfigMap's files where
    the rendered `path:` entries point."""
    submission = build_campaign(convert_design_spec(original), "c", "default", {"numDesigns": 10})
    spec = BoltzGenCampaignSpec.model_validate(submission.resource["spec"])
    doc, refs = render_design_spec(spec.design_spec)
    inputs = case / "inputs"
    inputs.mkdir(parents=True)
    for directory in {posixpath.dirname(ref.path) for ref in refs}:
        doc = relocate(doc, directory, str(inputs))
    for ref in refs:
        assert ref.source == "configMap" and ref.name == "c-inputs"
        (inputs / ref.file_name).write_text(submission.configmap["data"][ref.key])
    path = case / SPEC_FILE
    path.write_text(yaml.safe_dump(doc, sort_keys=False))  # as builders/campaign.build_configmap writes it
    return path


@pytest.mark.parametrize("name", SPECS)
def test_boltzgen_reads_the_same_design(name, parsed):
    original, rendered = parsed[(name, "original")], parsed[(name, "rendered")]
    assert "error" not in original, f"boltzgen refused our original {name}: {original['error']}"
    assert "error" not in rendered, f"boltzgen refused the rendered {name}: {rendered['error']}"
    assert rendered["parser"] == original["parser"]
    assert original["parser"]["chains"]  # the comparison saw a design at all
