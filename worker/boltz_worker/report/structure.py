"""Tokens of a boltz structure file (mmCIF or PDB), with the pLDDT boltz wrote into each atom's B-factor.

boltz 2.2.1's writers (boltz/data/write/mmcif.py, pdb.py) put pLDDT x 100 of an atom's token into its B-factor,
and index tokens the way its pLDDT and PAE arrays do: one token per polymer residue (ATOM records), one token per
atom of a non-polymer (HETATM records), in file order. So the file alone gives the per-token pLDDT and the chain
boundaries of the PAE matrix, whatever the input was (SMILES ligands included).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Token:
    """One boltz token: its chain, residue number (per the file), residue name and pLDDT (0..100)."""

    chain: str
    residue: int
    name: str
    plddt: float
    ligand: bool = False


@dataclass(frozen=True)
class _Atom:
    record: str  # ATOM or HETATM
    chain: str
    residue: int
    name: str  # residue name
    b_factor: float
    atom: str = ""  # atom name
    xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Structure:
    """What the report needs of a model: its tokens, and whether its backbone can be drawn as a cartoon."""

    tokens: list[Token]
    median_ca_step: float | None  # Å between consecutive CA atoms of a chain (3.8 in a real protein)
    span: float  # Å, the largest extent of the atoms' bounding box

    @property
    def cartoon_drawable(self) -> bool:
        """False when consecutive CA atoms are far apart (a random-weight model): viewers draw no cartoon then."""
        return self.median_ca_step is None or self.median_ca_step < 4.5


def read_structure(path: Path) -> Structure:
    """Tokens and backbone geometry of a .cif or .pdb file (no atoms: no tokens)."""
    text = path.read_text(errors="replace")
    atoms = _cif_atoms(text) if path.suffix == ".cif" else _pdb_atoms(text)
    steps = []
    previous: _Atom | None = None
    for atom in (a for a in atoms if a.record == "ATOM" and a.atom == "CA"):
        if previous and previous.chain == atom.chain:
            steps.append(sum((p - q) ** 2 for p, q in zip(previous.xyz, atom.xyz, strict=True)) ** 0.5)
        previous = atom
    span = max(max(a.xyz[k] for a in atoms) - min(a.xyz[k] for a in atoms) for k in range(3)) if atoms else 0.0
    return Structure(_tokens(atoms), sorted(steps)[len(steps) // 2] if steps else None, span)


def read_tokens(path: Path) -> list[Token]:
    """The tokens of a .cif or .pdb file, in boltz's token order; [] when it holds no atoms (or is unreadable)."""
    return read_structure(path).tokens


def _tokens(atoms: list[_Atom]) -> list[Token]:
    tokens: list[Token] = []
    last: tuple[str, int] | None = None
    for atom in atoms:
        if atom.record == "HETATM":
            tokens.append(Token(atom.chain, atom.residue, atom.name, atom.b_factor, ligand=True))
            last = None
        elif (atom.chain, atom.residue) != last:
            tokens.append(Token(atom.chain, atom.residue, atom.name, atom.b_factor))
            last = (atom.chain, atom.residue)
    return tokens


def chain_spans(tokens: list[Token]) -> list[tuple[str, int, int]]:
    """(chain, first token index, end index exclusive) for each run of consecutive tokens of one chain."""
    spans: list[tuple[str, int, int]] = []
    for i, token in enumerate(tokens):
        if spans and spans[-1][0] == token.chain:
            spans[-1] = (token.chain, spans[-1][1], i + 1)
        else:
            spans.append((token.chain, i, i + 1))
    return spans


def _cif_atoms(text: str) -> list[_Atom]:
    lines = text.splitlines()
    columns: list[str] = []
    atoms: list[_Atom] = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("_atom_site."):
            columns.append(line.split()[0][len("_atom_site.") :])
        elif columns and line and not line.startswith(("#", "_", "loop_", "data_")):
            atom = _cif_atom(columns, line)
            if atom:
                atoms.append(atom)
        elif columns and atoms and line.startswith(("#", "loop_", "_", "data_")):
            break  # the end of the atom_site loop
        i += 1
    return atoms


def _cif_atom(columns: list[str], line: str) -> _Atom | None:
    try:
        values = dict(zip(columns, shlex.split(line), strict=False))
        return _Atom(
            record=values.get("group_PDB", "ATOM"),
            chain=values.get("auth_asym_id") or values["label_asym_id"],
            residue=int(values.get("auth_seq_id") or values.get("label_seq_id") or 0),
            name=values.get("label_comp_id", "?"),
            b_factor=float(values.get("B_iso_or_equiv", "nan")),
            atom=values.get("label_atom_id") or values.get("auth_atom_id", ""),
            xyz=(float(values["Cartn_x"]), float(values["Cartn_y"]), float(values["Cartn_z"])),
        )
    except (KeyError, ValueError):
        return None


def _pdb_atoms(text: str) -> list[_Atom]:
    atoms = []
    for line in text.splitlines():
        record = line[:6].strip()
        if record not in ("ATOM", "HETATM"):
            continue
        try:
            xyz = (float(line[30:38]), float(line[38:46]), float(line[46:54]))
            atoms.append(
                _Atom(record, line[21].strip(), int(line[22:26]), line[17:20].strip(), float(line[60:66]),
                      line[12:16].strip(), xyz)
            )  # fmt: skip
        except (IndexError, ValueError):
            continue
    return atoms
