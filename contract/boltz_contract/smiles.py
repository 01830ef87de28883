"""A small SMILES tokenizer: enough to count heavy atoms and catch malformed strings without RDKit.

Boltz refuses affinity for ligands with more than 128 heavy atoms only after loading the model; counting here lets
the operator reject such an input when it is applied.
"""

from __future__ import annotations

import re

ORGANIC_TWO_LETTER = ("Cl", "Br")
ORGANIC_ONE_LETTER = frozenset("BCNOPSFI")
AROMATIC_ORGANIC = frozenset("bcnops")
WILDCARD = "*"
BOND_AND_STRUCTURE = frozenset("-=#$:/\\.()")  # bonds, branches, disconnection
# Inside brackets: [isotope]symbol[chirality][hcount][charge][:class]; the symbol is what we need.
_BRACKET_SYMBOL = re.compile(r"^\d*(\*|[A-Z][a-z]?|se|as|te|[bcnops])")


class SmilesError(ValueError):
    pass


def heavy_atom_count(smiles: str) -> int:
    """Atoms other than hydrogen, as RDKit's RemoveHs(mol).GetNumAtoms() would count them for usual inputs."""
    return sum(1 for symbol in atom_symbols(smiles) if symbol != "H")


def atom_symbols(smiles: str) -> list[str]:
    """Element symbols of every atom written in `smiles` (implicit hydrogens are not atoms here)."""
    if not isinstance(smiles, str) or not smiles.strip():
        raise SmilesError("empty SMILES")
    symbols: list[str] = []
    ring_bonds: dict[str, int] = {}
    depth = 0
    i = 0
    while i < len(smiles):
        ch = smiles[i]
        if ch == "[":
            end = smiles.find("]", i + 1)
            if end < 0:
                raise SmilesError(f"unclosed '[' at position {i + 1}")
            symbols.append(_bracket_symbol(smiles[i + 1 : end], i))
            i = end + 1
            continue
        if smiles.startswith(ORGANIC_TWO_LETTER, i):
            symbols.append(smiles[i : i + 2])
            i += 2
            continue
        if ch in ORGANIC_ONE_LETTER or ch in AROMATIC_ORGANIC or ch == WILDCARD:
            symbols.append(ch.upper() if ch != WILDCARD else ch)
        elif ch.isdigit():
            ring_bonds[ch] = ring_bonds.get(ch, 0) + 1
        elif ch == "%":
            label = smiles[i + 1 : i + 3]
            if len(label) != 2 or not label.isdigit():
                raise SmilesError(f"'%' must be followed by two digits at position {i + 1}")
            ring_bonds["%" + label] = ring_bonds.get("%" + label, 0) + 1
            i += 2
        elif ch in "()":
            depth += 1 if ch == "(" else -1
            if depth < 0:
                raise SmilesError(f"unbalanced ')' at position {i + 1}")
        elif ch not in BOND_AND_STRUCTURE:
            raise SmilesError(f"unexpected character {ch!r} at position {i + 1}")
        i += 1
    if depth:
        raise SmilesError("unbalanced '('")
    unclosed = sorted(label for label, n in ring_bonds.items() if n % 2)
    if unclosed:
        raise SmilesError(f"unclosed ring bond {', '.join(unclosed)}")
    if not symbols:
        raise SmilesError("no atoms")
    return symbols


def _bracket_symbol(content: str, position: int) -> str:
    match = _BRACKET_SYMBOL.match(content)
    if not match:
        raise SmilesError(f"no element in bracket atom [{content}] at position {position + 1}")
    symbol = match.group(1)
    return symbol.capitalize() if symbol.islower() else symbol
