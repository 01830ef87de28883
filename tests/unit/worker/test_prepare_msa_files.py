"""The given MSA files checked as boltz 2.2.1 reads them (prepare/msa_files.py), before any boltz runs."""

from __future__ import annotations

import gzip

import pytest

from boltz_contract import ErrorClass, WorkerError
from boltz_worker.prepare.msa_files import chain_tokens, check_msa_file, query_mismatch

SEQ = "MKTAYIAKQRQISFVKSHFSRQ"
GOOD_A3M = (
    f"#comment\n>101\n{SEQ}\n\n>UniRef100_X hit\n{SEQ[:3]}W{SEQ[4:-2]}-{SEQ[-1]}\n>UniRef100_Y\n{SEQ[:5]}ka{SEQ[5:]}\n"
)


def check(tmp_path, text: str | bytes, name: str = "a.a3m", sequence: str = SEQ, **kwargs) -> None:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    check_msa_file(path, ["A"], sequence, shown_as=f"inputs/{name}", **kwargs)


def refused(tmp_path, text: str | bytes, name: str = "a.a3m", **kwargs) -> str:
    with pytest.raises(WorkerError) as raised:
        check(tmp_path, text, name, **kwargs)
    assert raised.value.error_class == ErrorClass.INVALID_INPUT
    return raised.value.message


def test_a_good_a3m_with_comments_gaps_and_insertions_passes(tmp_path):
    check(tmp_path, GOOD_A3M)


def test_a_good_csv_passes(tmp_path):
    check(tmp_path, f"key,sequence\n1,{SEQ}\n-1,{SEQ[:2]}A{SEQ[3:]}\n", name="a.csv")


def test_a_nul_byte_ending_the_last_line_names_chain_file_and_line(tmp_path):
    message = refused(tmp_path, f">101\n{SEQ}\n>hit\nNPIFD{SEQ[5:]}\n\0")
    assert message.startswith("chain A: the MSA file inputs/a.a3m has a NUL byte at line 5")
    assert "remove the NUL bytes" in message


def test_a_compressed_file_is_named_so(tmp_path):
    message = refused(tmp_path, gzip.compress(GOOD_A3M.encode()))
    assert message.startswith("chain A: the MSA file inputs/a.a3m is gzip-compressed")


def test_a_binary_file_is_not_utf8_text(tmp_path):
    message = refused(tmp_path, f">101\n{SEQ}\n".encode() + bytes([0xFF, 0xFE, 0x00]))
    assert "chain A: the MSA file inputs/a.a3m is not UTF-8 text (byte 0xff at line 3)" in message


def test_a_control_character_is_refused_with_its_line(tmp_path):
    message = refused(tmp_path, f">101\n{SEQ}\n>hit\n\x07{SEQ}\n")
    assert "control character '\\x07' at line 4" in message


def test_a_first_row_with_another_residue_is_refused_citing_boltz(tmp_path):
    other = SEQ[:4] + "W" + SEQ[5:]
    message = refused(tmp_path, f">101\n{other}\n>hit\n{SEQ}\n")
    assert "the first row of the MSA file inputs/a.a3m (line 2) is not the chain's sequence" in message
    assert "1 of 22 positions differ: 5: W for Y" in message
    assert "featurizerv2.py construct_paired_msa" in message


def test_a_first_row_of_another_length_is_refused(tmp_path):
    message = refused(tmp_path, f"key,sequence\n1,{SEQ[:-1]}\n", name="a.csv")
    assert "(line 2) is not the chain's sequence (21 residues against the chain's 22)" in message


@pytest.mark.parametrize(
    "sequence, first_row, modifications",
    [
        ("MKV", "XKV", None),  # MET in the chain, UNK in the MSA: boltz writes the chain's residues in
        ("XKV", "AKV", None),  # UNK in the chain (any letter in the MSA)
        ("MSV", "MAV", [{"position": 2, "ccd": "SEP"}]),  # a modified residue is UNK
    ],
)
def test_first_rows_boltz_tolerates(tmp_path, sequence, first_row, modifications):
    check(tmp_path, f">101\n{first_row}\n", sequence=sequence, modifications=modifications)


def test_met_unk_and_an_unk_chain_position_together_are_not_tolerated():
    # featurizerv2: all differing positions must be MET-vs-UNK, OR all must be UNK in the chain; a mix is dropped
    assert query_mismatch(("UNK", "ALA", "VAL"), chain_tokens("MXV")) is not None
    assert query_mismatch(("UNK", "UNK", "VAL"), chain_tokens("MXV")) is None  # position 2 is no mismatch


def test_mse_modification_is_a_met():
    assert chain_tokens("MAV", [{"position": 2, "ccd": "MSE"}]) == ["MET", "MET", "VAL"]


def test_a_character_boltz_cannot_read_names_line_and_column(tmp_path):
    message = refused(tmp_path, f">101\n{SEQ}\n>hit\nMK.AY{SEQ[5:]}\n")
    assert "has '.' at line 4, column 3, which boltz cannot read" in message


def test_rows_beyond_max_seqs_and_repeated_rows_are_not_read_as_boltz_does(tmp_path):
    bad = f"{SEQ[:3]}*{SEQ[4:]}"
    check(tmp_path, f">101\n{SEQ}\n>hit\n{SEQ}\n>bad\n{bad}\n", max_seqs=1)
    assert "'*'" in refused(tmp_path, f">101\n{SEQ}\n>bad\n{bad}\n", max_seqs=2)


def test_csv_needs_exactly_key_and_sequence_columns(tmp_path):
    message = refused(tmp_path, f"id,sequence\n1,{SEQ}\n", name="a.csv")
    assert "must have exactly the columns key and sequence" in message


def test_csv_empty_sequence_cell(tmp_path):
    assert "empty sequence at line 3" in refused(tmp_path, f"key,sequence\n1,{SEQ}\n2,\n", name="a.csv")


def test_a_file_without_rows(tmp_path):
    assert "has no sequence row" in refused(tmp_path, ">101\n\n")


def test_a_missing_file(tmp_path):
    with pytest.raises(WorkerError) as raised:
        check_msa_file(tmp_path / "nope.a3m", ["A", "B"], SEQ)
    assert raised.value.message.startswith("chains A, B: cannot read the MSA file")
