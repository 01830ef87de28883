"""Reading a screen's library (library.py): .smi and .csv split as text, caps, ids (pattern, repeats), the file's
size; and, with RDKit and boltz (the boltz venv's python as $BOLTZ_PYTHON, as the worker image's own), each ligand
checked by boltz's rules (chemistry.py) and .sdf read by RDKit."""

from __future__ import annotations

from pathlib import Path

import pytest

from boltz_contract import ErrorClass, WorkerError
from boltz_contract.library_text import check_entries, parse_csv, parse_smi
from boltz_contract.screen import LibraryFile, ScreenLigand, ScreenPrepareRun
from boltz_worker.screen_runs.library import library_path, read_library
from support.fidelity import CACHE_HOME

BOLTZ_PYTHON = CACHE_HOME / "boltz-venv-2.2.1" / "bin" / "python"
SDF = """ethanol
     RDKit          2D

  3  2  0  0  0  0  0  0  0  0999 V2000
   -1.2990   -0.2500    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0
    0.0000    0.5000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0
    1.2990   -0.2500    0.0000 O   0  0  0  0  0  0  0  0  0  0  0  0
  1  2  1  0
  2  3  1  0
M  END
>  <catalog_id>
EN-1

$$$$
phenol
     RDKit          2D

  7  7  0  0  0  0  0  0  0  0999 V2000
   -0.3214   -1.2990    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0
    1.1786   -1.2990    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0
    1.9286    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0
    1.1786    1.2990    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0
   -0.3214    1.2990    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0
   -1.0714    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0
   -2.5714   -0.0000    0.0000 O   0  0  0  0  0  0  0  0  0  0  0  0
  1  2  1  0
  2  3  2  0
  3  4  1  0
  4  5  2  0
  5  6  1  0
  6  7  1  0
  6  1  2  0
M  END
>  <catalog_id>
EN-2

$$$$
pentavalent
     RDKit          2D

  6  5  0  0  0  0  0  0  0  0999 V2000
    0.0000    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0
    1.0000    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0
    2.0000    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0
    3.0000    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0
    4.0000    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0
    5.0000    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0
  1  2  1  0
  1  3  1  0
  1  4  1  0
  1  5  1  0
  1  6  1  0
M  END
>  <catalog_id>
EN-3

$$$$
"""


def test_smi_lines_are_smiles_then_id_with_a_header_comments_and_extra_columns_skipped():
    text = "SMILES Name\n# a comment\n\nCCO  ethanol extra\nc1ccccc1O\tphenol\n"
    entries = parse_smi(text)
    assert [(e["id"], e["smiles"], e["line"]) for e in entries] == [("ethanol", "CCO", 4), ("phenol", "c1ccccc1O", 5)]


def test_a_smi_line_without_an_id_is_invalid_input_naming_the_line():
    with pytest.raises(WorkerError) as e:
        parse_smi("CCO ethanol\nCCN\n")
    assert e.value.error_class == ErrorClass.INVALID_INPUT
    assert "line 2" in e.value.message


def test_csv_reads_the_named_columns_and_keeps_an_empty_smiles_as_a_failed_entry():
    text = "name,structure,mw\nL1,CCO,46\nL2,,0\n"
    entries = parse_csv(text, id_column="name", smiles_column="structure")
    assert [(e["id"], e["smiles"]) for e in entries] == [("L1", "CCO"), ("L2", None)]
    assert entries[1]["error"] == "no SMILES in column structure"


def test_csv_without_the_columns_is_invalid_input():
    with pytest.raises(WorkerError, match=r"lacks the column\(s\) \['smiles'\]"):
        parse_csv("id,smi\nL1,CCO\n", id_column="id", smiles_column="smiles")


def test_repeated_ids_are_refused_naming_them():
    entries = [{"id": i, "smiles": "C"} for i in ("a", "b", "a", "c", "b")]
    with pytest.raises(WorkerError) as e:
        check_entries(entries, max_ligands=10)
    assert e.value.error_class == ErrorClass.INVALID_INPUT
    assert e.value.message == "2 ligand id(s) appear more than once: 'a', 'b'"


def test_ids_that_are_not_file_names_are_refused():
    with pytest.raises(WorkerError, match=r"'a/b', '-x'"):
        check_entries([{"id": "ok.1"}, {"id": "a/b"}, {"id": "-x"}], max_ligands=10)


def test_more_ligands_than_max_ligands_is_refused_and_exactly_max_is_not():
    entries = [{"id": f"L{i}", "smiles": "C"} for i in range(5)]
    check_entries(entries, max_ligands=5)
    with pytest.raises(WorkerError, match="the library has 5 ligands; a screen takes at most 4"):
        check_entries(entries, max_ligands=4)
    with pytest.raises(WorkerError, match="no ligand"):
        check_entries([], max_ligands=4)


def test_a_library_file_over_max_bytes_is_refused(tmp_path):
    (tmp_path / "lib.smi").write_text("CCO ethanol\n" * 10)
    assert (
        library_path(LibraryFile(format="smi", path="lib.smi", max_bytes=120), tmp_path, tmp_path)
        == tmp_path / "lib.smi"
    )
    with pytest.raises(WorkerError, match="is 120 bytes; at most 119"):
        library_path(LibraryFile(format="smi", path="lib.smi", max_bytes=119), tmp_path, tmp_path)
    with pytest.raises(WorkerError, match="not among the run's files"):
        library_path(LibraryFile(format="smi", path="other.smi"), tmp_path, tmp_path)


# ---------------------------------------------------------------------------------------------- RDKit and boltz


@pytest.fixture
def boltz_python(monkeypatch) -> Path:
    if not (BOLTZ_PYTHON.parent.parent / ".installed").is_file():
        pytest.skip(f"no boltz venv at {BOLTZ_PYTHON.parent.parent} (make boltz-venv): RDKit and boltz live there")
    monkeypatch.setenv("BOLTZ_PYTHON", str(BOLTZ_PYTHON))
    return BOLTZ_PYTHON


def run_of(tmp_path, affinity=True, **library) -> ScreenPrepareRun:
    mols = tmp_path / "cache" / "mols"
    mols.mkdir(parents=True, exist_ok=True)
    return ScreenPrepareRun(target_file="target.yaml", ligand_chain="L", affinity=affinity, ligands_per_shard=2,
                            cache_dir=str(mols.parent), results={"uri": "pvc://r/x", "local_dir": str(tmp_path / "r")},
                            **library)  # fmt: skip


def test_unparsable_and_unsanitizable_smiles_become_failed_rows_the_rest_is_screened(boltz_python, tmp_path):
    (tmp_path / "lib.smi").write_text("CCO ethanol\nC1CC broken-ring\nN#N#N bad-valence\nc1ccccc1O phenol\n")
    run = run_of(tmp_path, library_file=LibraryFile(format="smi", path="lib.smi"))
    library = read_library(run, tmp_path, tmp_path / "work")
    assert [x["id"] for x in library.ligands] == ["ethanol", "phenol"]
    reasons = {row.id: row.error for row in library.rejected}
    assert reasons.keys() == {"broken-ring", "bad-valence"}
    assert reasons["broken-ring"].startswith("RDKit cannot parse the SMILES 'C1CC'")
    assert reasons["bad-valence"].startswith("RDKit cannot sanitize the SMILES 'N#N#N': ")
    assert library.total == 4


def test_a_salt_is_refused_for_affinity_by_boltz_s_own_standardization_and_kept_without(boltz_python, tmp_path):
    salt = ScreenLigand(id="salt", smiles="CCO.[Na+].[Cl-]")
    with_affinity = read_library(run_of(tmp_path, library_inline=[salt]), tmp_path, tmp_path / "a")
    assert with_affinity.rejected[0].error.startswith("boltz's standardization (affinity) refuses the SMILES")
    without = read_library(run_of(tmp_path, affinity=False, library_inline=[salt]), tmp_path, tmp_path / "b")
    assert [x["id"] for x in without.ligands] == ["salt"]


def test_a_ccd_ligand_missing_from_the_cache_is_a_failed_row(boltz_python, tmp_path):
    run = run_of(tmp_path, library_inline=[ScreenLigand(id="sah", ccd="SAH"), ScreenLigand(id="e", smiles="CCO")])
    library = read_library(run, tmp_path, tmp_path / "work")
    assert [r.error.split(":")[0] for r in library.rejected] == [
        "CCD code SAH is not among the model cache's molecules (mols/)"
    ]


def test_sdf_is_read_by_rdkit_with_the_id_property_and_a_bad_record_is_a_failed_row(boltz_python, tmp_path):
    (tmp_path / "lib.sdf").write_text(SDF)
    run = run_of(tmp_path, library_file=LibraryFile(format="sdf", path="lib.sdf", id_property="catalog_id"))
    library = read_library(run, tmp_path, tmp_path / "work")
    assert library.ligands == [
        {"id": "EN-1", "smiles": "CCO", "ccd": None},
        {"id": "EN-2", "smiles": "Oc1ccccc1", "ccd": None},
    ]
    assert [(r.id, r.error.split(":")[0]) for r in library.rejected] == [("EN-3", "RDKit cannot sanitize SDF record 3")]
    titled = read_library(
        run_of(tmp_path, library_file=LibraryFile(format="sdf", path="lib.sdf")), tmp_path, tmp_path / "t"
    )
    assert [x["id"] for x in titled.ligands] == ["ethanol", "phenol"]


def test_sdf_ids_are_checked_for_repeats_like_any_library(boltz_python, tmp_path):
    (tmp_path / "lib.sdf").write_text(SDF.replace("phenol", "ethanol"))
    run = run_of(tmp_path, library_file=LibraryFile(format="sdf", path="lib.sdf"))
    with pytest.raises(WorkerError, match="appear more than once: 'ethanol'"):
        read_library(run, tmp_path, tmp_path / "work")


def test_a_library_boltz_would_refuse_entirely_fails_the_screen_before_the_target_is_checked(boltz_python, tmp_path):
    from boltz_worker.screen_runs.screen_prepare import screen_prepare

    run = run_of(tmp_path, library_inline=[ScreenLigand(id="a", smiles="C1CC"), ScreenLigand(id="b", smiles="[Xx]")])
    with pytest.raises(WorkerError) as e:
        screen_prepare(run, tmp_path)  # no target.yaml here: reading it would be another error
    assert e.value.error_class == ErrorClass.INVALID_INPUT
    assert e.value.message.startswith("none of the library's 2 ligands can be screened (a: RDKit cannot parse")
