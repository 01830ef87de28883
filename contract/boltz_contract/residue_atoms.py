"""The atom names of boltz's canonical residues, for checking bond constraints before any Job (generated from boltz
2.2.1; regenerate with boltz's const.ref_atoms when boltz changes them)."""

from __future__ import annotations

# Heavy-atom names of boltz's canonical residues, by polymer type and one-letter code: boltz 2.2.1
# boltz/data/const.py `ref_atoms` (parse/schema.py builds a canonical residue from exactly these; no OXT).
CANONICAL_ATOMS: dict[str, dict[str, frozenset[str]]] = {
    "protein": {
        "A": frozenset("N CA C O CB".split()),
        "R": frozenset("N CA C O CB CG CD NE CZ NH1 NH2".split()),
        "N": frozenset("N CA C O CB CG OD1 ND2".split()),
        "D": frozenset("N CA C O CB CG OD1 OD2".split()),
        "C": frozenset("N CA C O CB SG".split()),
        "E": frozenset("N CA C O CB CG CD OE1 OE2".split()),
        "Q": frozenset("N CA C O CB CG CD OE1 NE2".split()),
        "G": frozenset("N CA C O".split()),
        "H": frozenset("N CA C O CB CG ND1 CD2 CE1 NE2".split()),
        "I": frozenset("N CA C O CB CG1 CG2 CD1".split()),
        "L": frozenset("N CA C O CB CG CD1 CD2".split()),
        "K": frozenset("N CA C O CB CG CD CE NZ".split()),
        "M": frozenset("N CA C O CB CG SD CE".split()),
        "F": frozenset("N CA C O CB CG CD1 CD2 CE1 CE2 CZ".split()),
        "P": frozenset("N CA C O CB CG CD".split()),
        "S": frozenset("N CA C O CB OG".split()),
        "T": frozenset("N CA C O CB OG1 CG2".split()),
        "W": frozenset("N CA C O CB CG CD1 CD2 NE1 CE2 CE3 CZ2 CZ3 CH2".split()),
        "Y": frozenset("N CA C O CB CG CD1 CD2 CE1 CE2 CZ OH".split()),
        "V": frozenset("N CA C O CB CG1 CG2".split()),
    },
    "dna": {
        "A": frozenset("P OP1 OP2 O5' C5' C4' O4' C3' O3' C2' C1' N9 C8 N7 C5 C6 N6 N1 C2 N3 C4".split()),
        "G": frozenset("P OP1 OP2 O5' C5' C4' O4' C3' O3' C2' C1' N9 C8 N7 C5 C6 O6 N1 C2 N2 N3 C4".split()),
        "C": frozenset("P OP1 OP2 O5' C5' C4' O4' C3' O3' C2' C1' N1 C2 O2 N3 C4 N4 C5 C6".split()),
        "T": frozenset("P OP1 OP2 O5' C5' C4' O4' C3' O3' C2' C1' N1 C2 O2 N3 C4 O4 C5 C7 C6".split()),
    },
    "rna": {
        "A": frozenset("P OP1 OP2 O5' C5' C4' O4' C3' O3' C2' O2' C1' N9 C8 N7 C5 C6 N6 N1 C2 N3 C4".split()),
        "G": frozenset("P OP1 OP2 O5' C5' C4' O4' C3' O3' C2' O2' C1' N9 C8 N7 C5 C6 O6 N1 C2 N2 N3 C4".split()),
        "C": frozenset("P OP1 OP2 O5' C5' C4' O4' C3' O3' C2' O2' C1' N1 C2 O2 N3 C4 N4 C5 C6".split()),
        "U": frozenset("P OP1 OP2 O5' C5' C4' O4' C3' O3' C2' O2' C1' N1 C2 O2 N3 C4 O4 C5 C6".split()),
    },
}
