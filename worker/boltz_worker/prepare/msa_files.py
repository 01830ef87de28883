"""The MSA files a spec gives, checked the way boltz 2.2.1 reads them, before anything else runs.

boltz fails late, or not at all, on a bad MSA: a NUL byte (ColabFold separates the queries of a multi-query result
with one) reaches `_parse_a3m` as a sequence character and fails the input with a bare `'\\x00'`; an MSA whose first
row is not the chain's sequence is replaced, without an error, by a single-sequence dummy during featurization on
the GPU (boltz/data/feature/featurizerv2.py, construct_paired_msa). Here each is an InvalidInput naming the chain,
the file and the line.

The rules are boltz's own (boltz 2.2.1):
- rows: boltz/data/parse/a3m.py `_parse_a3m` and boltz/data/parse/csv.py `parse_csv`: a row is a stripped,
  non-empty line that is not a header (`>`) or comment (`#`) (A3M), or the `sequence` cell (CSV, columns exactly
  key and sequence); repeated rows (gaps removed, upper-cased) are skipped; at most max_msa_seqs rows are read;
  lower-case letters are insertions (skipped); every other character must be a key of
  `const.prot_letter_to_token` (PROT_LETTER_TO_TOKEN below) or boltz raises KeyError.
- the query: featurizerv2.construct_paired_msa compares the residue types of the first row with the chain's:
  different lengths drop the MSA; differing positions are tolerated only when every one of them is a MET in the
  chain against UNK in the MSA, or every one of them is UNK in the chain (a modified residue, a letter outside the
  alphabet); otherwise the MSA is dropped.
- the chain's residue types: boltz/data/parse/schema.py `parse_boltz_schema`: letters through
  `prot_letter_to_token` (anything else UNK), then each modification's CCD code at its position; `parse_polymer`
  maps MSE to MET and gives every non-standard residue the UNK type (`parse_ccd_residue`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from boltz_contract import ErrorClass, WorkerError

DEFAULT_MAX_MSA_SEQS = 8192  # `boltz predict --max_msa_seqs` default
# boltz/data/const.py prot_letter_to_token (boltz 2.2.1).
PROT_LETTER_TO_TOKEN = {
    "A": "ALA", "R": "ARG", "N": "ASN", "D": "ASP", "C": "CYS", "E": "GLU", "Q": "GLN", "G": "GLY", "H": "HIS",
    "I": "ILE", "L": "LEU", "K": "LYS", "M": "MET", "F": "PHE", "P": "PRO", "S": "SER", "T": "THR", "W": "TRP",
    "Y": "TYR", "V": "VAL", "X": "UNK", "J": "UNK", "B": "UNK", "Z": "UNK", "O": "UNK", "U": "UNK", "-": "-",
}  # fmt: skip
# Residue names with a token of their own (boltz/data/const.py `tokens`, protein part): a modification to one of
# these keeps its type; any other CCD code is UNK.
STANDARD_RESIDUES = frozenset(v for v in PROT_LETTER_TO_TOKEN.values() if v != "-")
FEATURIZER = "boltz/data/feature/featurizerv2.py construct_paired_msa"
SHOWN = 12  # differing positions a message lists


@dataclass(frozen=True)
class MsaRow:
    """One row boltz reads: its residue types (insertions dropped) and where it is in the file (1-based line)."""

    line: int
    text: str
    tokens: tuple[str, ...]


def chain_tokens(sequence: str, modifications: list[dict] | None = None) -> list[str]:
    """The residue types boltz gives a protein chain (parse_boltz_schema, then parse_polymer's MSE -> MET)."""
    tokens = [PROT_LETTER_TO_TOKEN.get(c, "UNK") for c in sequence]
    tokens = ["UNK" if t == "-" else t for t in tokens]  # "-" is not a residue letter in a chain
    for mod in modifications or []:
        code = "MET" if mod["ccd"] == "MSE" else mod["ccd"]
        tokens[int(mod["position"]) - 1] = code if code in STANDARD_RESIDUES else "UNK"
    return tokens


def check_msa_file(
    path: Path, chains: list[str], sequence: str, modifications: list[dict] | None = None,
    max_seqs: int | None = None, shown_as: str | None = None,
) -> None:  # fmt: skip
    """Check one MSA file given for the protein entity `chains` (its chain ids) with `sequence`.

    Raises WorkerError(INVALID_INPUT) naming the chains, the file (`shown_as`, default its path) and the line when
    the file is unreadable, not UTF-8 text, holds a NUL or other control byte, has no row, has a character boltz
    cannot read (within the rows boltz reads), or its first row is not the chain's sequence within boltz's
    tolerance (see the module's docstring)."""
    name = shown_as or str(path)
    who = f"chain{'s' if len(chains) > 1 else ''} {', '.join(chains)}"
    try:
        data = path.read_bytes()
    except OSError as e:
        raise _invalid(f"{who}: cannot read the MSA file {name}: {e}") from e
    text = _text(data, who, name)
    first = first_row(text, path.suffix.lower(), max_seqs or DEFAULT_MAX_MSA_SEQS, who, name)
    if first is None:
        raise _invalid(f"{who}: the MSA file {name} has no sequence row; its first row must be the chain's sequence")
    mismatch = query_mismatch(first.tokens, chain_tokens(sequence, modifications))
    if mismatch:
        raise _invalid(
            f"{who}: the first row of the MSA file {name} (line {first.line}) is not the chain's sequence "
            f"({mismatch}); boltz would drop this MSA without an error and predict from the sequence alone "
            f"({FEATURIZER}): give the MSA computed for this chain, with its sequence as the first row"
        )


def _text(data: bytes, who: str, name: str) -> str:
    if data.startswith(b"\x1f\x8b"):
        raise _invalid(f"{who}: the MSA file {name} is gzip-compressed; boltz reads .a3m and .csv as plain text: "
                       "decompress it")  # fmt: skip
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise _invalid(
            f"{who}: the MSA file {name} is not UTF-8 text (byte 0x{data[e.start]:02x} at line {line}): give an "
            "uncompressed .a3m or .csv text file"
        ) from e
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise _invalid(
            f"{who}: the MSA file {name} has a NUL byte at line {line}; boltz reads it as a sequence character and "
            "fails ('\\x00'). ColabFold separates the queries of a multi-query result with NUL bytes: keep only "
            "this chain's block and remove the NUL bytes"
        )
    for number, line_text in enumerate(text.splitlines(), start=1):
        bad = next((c for c in line_text if ord(c) < 32 and c not in "\t\r\n" or ord(c) == 127), None)
        if bad is not None:
            raise _invalid(
                f"{who}: the MSA file {name} has a control character {bad!r} at line {number}: is it a binary "
                "file? give an uncompressed .a3m or .csv text file"
            )
    return text


def first_row(text: str, suffix: str, max_seqs: int, who: str = "chain", name: str = "the MSA file") -> MsaRow | None:
    """The first row boltz reads from an A3M (`suffix` ".a3m") or CSV (".csv") text, None when there is none;
    every row boltz reads (at most `max_seqs`, repeats skipped) is checked for characters boltz cannot read.
    Only the first row's residue types are kept (an MSA may hold 8192 rows of thousands of residues).
    Raises WorkerError(INVALID_INPUT)."""
    if suffix == ".csv":
        lines = _csv_rows(text, who, name)
    elif suffix == ".a3m":
        lines = _a3m_rows(text)
    else:
        raise _invalid(f"{who}: the MSA file {name} is neither .a3m nor .csv (boltz reads only these)")
    first: MsaRow | None = None
    seen: set[str] = set()
    for number, row in lines:
        key = row.replace("-", "").upper()
        if key in seen:
            continue
        seen.add(key)
        if first is None:
            first = MsaRow(number, row, _row_tokens(row, number, who, name))
        elif not all(c in PROT_LETTER_TO_TOKEN or c.islower() for c in set(row)):
            _row_tokens(row, number, who, name)  # raises, naming the column
        if len(seen) >= max_seqs:
            break
    return first


def _a3m_rows(text: str):
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith(("#", ">")):
            yield number, line


def _csv_rows(text: str, who: str, name: str):
    reader = csv.reader(io.StringIO(text))
    header = next(reader, [])
    if sorted(h.strip() for h in header) != ["key", "sequence"]:
        raise _invalid(f"{who}: the MSA file {name} must have exactly the columns key and sequence, has {header}")
    column = [h.strip() for h in header].index("sequence")
    for row in reader:
        number = reader.line_num
        cell = row[column].strip() if column < len(row) else ""
        if not cell:  # pandas reads an empty cell as NaN, on which boltz's parse_csv fails
            raise _invalid(f"{who}: the MSA file {name} has an empty sequence at line {number}")
        yield number, cell


def _row_tokens(row: str, number: int, who: str, name: str) -> tuple[str, ...]:
    tokens = []
    for column, c in enumerate(row, start=1):
        if c != "-" and c.islower():
            continue  # an insertion
        token = PROT_LETTER_TO_TOKEN.get(c)
        if token is None:
            raise _invalid(
                f"{who}: the MSA file {name} has {c!r} at line {number}, column {column}, which boltz cannot read "
                "(residues are upper-case one-letter codes, '-' a gap, lower case an insertion)"
            )
        tokens.append(token)
    return tuple(tokens)


def query_mismatch(msa: tuple[str, ...] | list[str], chain: list[str]) -> str | None:
    """Why boltz would drop an MSA whose first row has residue types `msa` for a chain of types `chain`, or None
    when it keeps it (featurizerv2.construct_paired_msa's length and residue-type checks)."""
    if len(msa) != len(chain):
        return f"{len(msa)} residues against the chain's {len(chain)}"
    differ = [i for i, (a, b) in enumerate(zip(msa, chain)) if a != b]
    if not differ:
        return None
    met_vs_unk = all(chain[i] == "MET" and msa[i] == "UNK" for i in differ)
    chain_unk = all(chain[i] == "UNK" for i in differ)
    if met_vs_unk or chain_unk:
        return None  # boltz keeps the MSA and writes the chain's residues into its first row
    shown = ", ".join(f"{i + 1}: {_letter(msa[i])} for {_letter(chain[i])}" for i in differ[:SHOWN])
    more = f" and {len(differ) - SHOWN} more" if len(differ) > SHOWN else ""
    return f"{len(differ)} of {len(chain)} positions differ: {shown}{more}"


_TOKEN_TO_LETTER = {v: k for k, v in PROT_LETTER_TO_TOKEN.items()} | {"UNK": "X"}


def _letter(token: str) -> str:
    return _TOKEN_TO_LETTER.get(token, token)


def _invalid(message: str) -> WorkerError:
    return WorkerError(ErrorClass.INVALID_INPUT, message)
