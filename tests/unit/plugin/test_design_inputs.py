"""boltzgen design specs -> BoltzGenCampaign: the translation round-trips through the operator's renderer."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from boltz_kubectl.errors import PluginError
from boltz_kubectl.inputs.boltzgen import convert_design_spec
from boltz_kubectl.manifests import build_campaign
from boltz_operator.api.campaign import BoltzGenCampaignSpec
from boltz_operator.render import render_design_spec

TARGET = Path(__file__).resolve().parents[2] / "fixtures" / "structures" / "3ch4.cif"

# Our own spec in boltzgen's spelling, using most of what the CRD expresses.
SPEC = """
entities:
  - protein:
      id: B
      sequence: 12..20C6
      secondary_structure: {helix: 1..4}
  - protein:
      id: [C, D]
      sequence: AAGVLKT
      binding_types: {binding: 2..4, not_binding: 6}
  - ligand:
      id: L
      ccd: SAH
  - file:
      path: target/3ch4.cif
      include:
        - chain: {id: A, res_index: 2..60}
      include_proximity:
        - chain: {id: A, res_index: 10..16, radius: 12.5}
      binding_types:
        - chain: {id: A, binding: "5..7,13"}
      structure_groups:
        - group: {id: A, visibility: 1}
      design_insertions:
        - insertion: {id: A, res_index: 20, num_residues: 2..5}
constraints:
  - total_len: {min: 40, max: 120}
  - bond:
      atom1: [B, 13, SG]
      atom2: [L, 1, SD]
"""


def spec_folder(tmp_path: Path, text: str = SPEC) -> Path:
    (tmp_path / "target").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TARGET, tmp_path / "target" / "3ch4.cif")
    path = tmp_path / "design.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def campaign(path: Path):
    return build_campaign(convert_design_spec(path), "c", "ns", {"numDesigns": 10, "budget": 2})


def test_the_rendered_spec_is_the_users_spec(tmp_path):
    """convert -> BoltzGenCampaign -> render_design_spec (what the worker hands boltzgen) gives back the user's
    document, but for the file path (the worker's own) and `id` (always a list in the CRD, a string for one)."""
    path = spec_folder(tmp_path)
    submission = campaign(path)
    spec = BoltzGenCampaignSpec.model_validate(submission.resource["spec"])
    rendered, files = render_design_spec(spec.design_spec)
    original = yaml.safe_load(path.read_text())
    original["entities"][3]["file"]["path"] = rendered["entities"][3]["file"]["path"]
    for entity in original["entities"]:
        body = next(iter(entity.values()))
        if "id" in body and isinstance(body["id"], list) and len(body["id"]) == 1:
            body["id"] = body["id"][0]
    assert _normal(rendered) == _normal(original)
    assert [f.source for f in files] == ["configMap"]
    assert submission.configmap["data"]["3ch4.cif"] == TARGET.read_text()


def _normal(doc):
    """Residue ranges are strings in the CRD: 6 and "6" are the same range to boltzgen's parse_range."""
    if isinstance(doc, dict):
        return {k: _normal(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_normal(v) for v in doc]
    return str(doc) if isinstance(doc, int) and not isinstance(doc, bool) else doc


def test_include_all_is_the_default(tmp_path):
    path = spec_folder(
        tmp_path, "entities:\n  - protein: {id: B, sequence: 10}\n  - file: {path: target/3ch4.cif, include: all}\n"
    )
    assert "include" not in campaign(path).resource["spec"]["designSpec"]["entities"][1]["file"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("entities:\n  - ligand: {id: L, ccd: SAH, binding_types: B}\n",
         "entities[0].ligand.binding_types: cannot be expressed"),
        ("entities:\n  - protein: {id: B, sequence: 10}\n  - file: {path: ../x.cif}\n", "entities[1].file.path"),
        ("entities:\n  - protein: {id: B, sequence: 10}\n  - file: {path: target/none.cif}\n", "not found"),
        ("entities:\n  - protein: {id: B, sequence: 10}\nfoo: 1\n", "unknown top-level key 'foo'"),
        ("entities:\n  - peptide: {id: B, sequence: 10}\n", "entities[0]: must have exactly one key"),
        ("entities:\n  - protein: {id: B, sequence: 10}\nconstraints:\n  - bond: {atom1: [B, 1]}\n",
         "constraints[0].bond.atom1"),
    ],
)  # fmt: skip
def test_refusals_name_the_boltzgen_field(tmp_path, text, message):
    with pytest.raises(PluginError) as raised:
        campaign(spec_folder(tmp_path, text))
    assert message in str(raised.value)
