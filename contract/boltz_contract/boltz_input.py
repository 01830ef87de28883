"""Validation of a Boltz-2 input YAML document, following boltz 2.2.1's `parse_boltz_schema`.

The operator calls it on the document it renders (so a bad spec is rejected when applied, not after a GPU was
scheduled) and the worker calls it again before running boltz. It never touches the file system: paths are
checked for their form only. `validate_boltz_input(doc)` returns every problem found, empty when valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .residue_atoms import CANONICAL_ATOMS
from .smiles import SmilesError, heavy_atom_count

__all__ = [
    "AFFINITY_MAX_HEAVY_ATOMS",
    "affinity_binder",
    "heavy_atom_count",
    "local_paths",
    "missing_msa_chains",
    "validate_boltz_input",
]

AFFINITY_MAX_HEAVY_ATOMS = 128
POLYMERS = ("protein", "dna", "rna")
ENTITY_TYPES = (*POLYMERS, "ligand")
TOP_LEVEL_KEYS = frozenset({"version", "sequences", "constraints", "templates", "properties"})
ENTITY_KEYS = {
    "protein": frozenset({"id", "sequence", "msa", "modifications", "cyclic"}),
    "dna": frozenset({"id", "sequence", "modifications", "cyclic"}),
    "rna": frozenset({"id", "sequence", "modifications", "cyclic"}),
    "ligand": frozenset({"id", "smiles", "ccd"}),
}
# One-letter codes boltz maps to residues; other letters (including lower case) silently become UNK.
ALPHABETS = {
    "protein": frozenset("ACDEFGHIKLMNPQRSTVWY" + "XBZJOU"),
    "dna": frozenset("ACGTN"),
    "rna": frozenset("ACGUN"),
}
MSA_EMPTY = "empty"  # explicit single-sequence mode
MSA_SUFFIXES = (".a3m", ".csv")
TEMPLATE_KEYS = frozenset({"cif", "pdb", "chain_id", "template_id", "force", "threshold"})


@dataclass
class _Entity:
    """One item of `sequences`."""

    kind: str
    ids: list[str]
    body: dict
    sequence: str | None = None  # polymers
    ligand_key: tuple | None = None  # boltz groups identical ligands into one entity


@dataclass
class _Doc:
    entities: list[_Entity] = field(default_factory=list)
    chain_kind: dict[str, str] = field(default_factory=dict)
    chain_entity: dict[str, _Entity] = field(default_factory=dict)

    def has_chain(self, chain: Any) -> bool:
        return isinstance(chain, str) and chain in self.chain_kind


def validate_boltz_input(doc: Any) -> list[str]:
    if not isinstance(doc, dict):
        return ["the input must be a mapping with a 'sequences' list"]
    errors: list[str] = []
    errors += [f"unknown top-level key {key!r}" for key in doc if key not in TOP_LEVEL_KEYS]
    if doc.get("version", 1) != 1:
        errors.append(f"version must be 1, got {doc.get('version')!r}")
    parsed = _parse_sequences(doc.get("sequences"), errors)
    _check_msas(parsed, errors)
    _check_constraints(doc.get("constraints"), parsed, errors)
    _check_templates(doc.get("templates"), parsed, errors)
    _check_properties(doc.get("properties"), parsed, errors)
    return errors


def missing_msa_chains(doc: Any) -> list[str]:
    """Protein chains without an `msa` entry: boltz needs the MSA server for them."""
    chains = []
    for kind, body in _items(doc):
        if kind == "protein" and _msa_value(body) is None:
            chains += _ids_of(body)
    return chains


def affinity_binder(doc: Any) -> str | None:
    """The chain id of the affinity ligand, when the input asks for affinity."""
    properties = doc.get("properties") if isinstance(doc, dict) else None
    for prop in properties if isinstance(properties, list) else []:
        if isinstance(prop, dict) and isinstance(prop.get("affinity"), dict):
            binder = prop["affinity"].get("binder")
            return binder if isinstance(binder, str) else None
    return None


def local_paths(doc: Any) -> list[str]:
    """Files the input refers to (MSAs and templates), as written."""
    paths = []
    for kind, body in _items(doc):
        msa = _msa_value(body) if kind == "protein" else None
        if isinstance(msa, str) and msa != MSA_EMPTY:
            paths.append(msa)
    templates = doc.get("templates") if isinstance(doc, dict) else None
    for template in templates if isinstance(templates, list) else []:
        if isinstance(template, dict):
            paths += [template[k] for k in ("cif", "pdb") if isinstance(template.get(k), str)]
    return paths


# ---------------------------------------------------------------------------------------------- sequences


def _items(doc: Any):
    sequences = doc.get("sequences") if isinstance(doc, dict) else None
    for item in sequences if isinstance(sequences, list) else []:
        if isinstance(item, dict) and len(item) == 1:
            kind, body = next(iter(item.items()))
            if isinstance(body, dict):
                yield str(kind).lower(), body


def _ids_of(body: dict) -> list[str]:
    ids = body.get("id")
    if isinstance(ids, str):
        return [ids]
    if isinstance(ids, list):
        return [i for i in ids if isinstance(i, str)]
    return []


def _msa_value(body: dict) -> str | None:
    """The msa as boltz reads it: absent, null and "" all mean 'generate with the server'."""
    msa = body.get("msa")
    return None if msa is None or msa == "" else msa


def _parse_sequences(sequences: Any, errors: list[str]) -> _Doc:
    parsed = _Doc()
    if not isinstance(sequences, list) or not sequences:
        errors.append("'sequences' must be a non-empty list")
        return parsed
    for index, item in enumerate(sequences):
        entity = _parse_entity(index, item, errors)
        if entity is None:
            continue
        parsed.entities.append(entity)
        for chain in entity.ids:
            if chain in parsed.chain_kind:
                errors.append(f"chain id {chain!r} is used more than once")
                continue  # the first use stays the one other checks see
            parsed.chain_kind[chain] = entity.kind
            parsed.chain_entity[chain] = entity
    return parsed


def _parse_entity(index: int, item: Any, errors: list[str]) -> _Entity | None:
    where = f"sequences[{index}]"
    if not isinstance(item, dict) or len(item) != 1:
        errors.append(f"{where} must have exactly one key: one of {', '.join(ENTITY_TYPES)}")
        return None
    kind, body = next(iter(item.items()))
    kind = str(kind).lower()
    if kind not in ENTITY_TYPES:
        errors.append(f"{where}: unknown entity type {kind!r}; use one of {', '.join(ENTITY_TYPES)}")
        return None
    if not isinstance(body, dict):
        errors.append(f"{where}: {kind} must be a mapping")
        return None
    ids = _parse_ids(where, body.get("id"), errors)
    name = f"{kind} {'/'.join(ids)}" if ids else where
    errors += [f"{name}: unknown key {key!r}" for key in body if key not in ENTITY_KEYS[kind]]
    entity = _Entity(kind=kind, ids=ids, body=body)
    if kind in POLYMERS:
        entity.sequence = _check_polymer(name, kind, body, errors)
    else:
        entity.ligand_key = _check_ligand(name, body, errors)
    return entity


def _parse_ids(where: str, ids: Any, errors: list[str]) -> list[str]:
    if isinstance(ids, str) and ids:
        return [ids]
    if isinstance(ids, list) and ids and all(isinstance(i, str) and i for i in ids):
        if len(set(ids)) != len(ids):
            errors.append(f"{where}: repeated chain id in {ids}")
        return list(dict.fromkeys(ids))
    errors.append(f"{where}: 'id' must be a chain id or a non-empty list of chain ids, got {ids!r}")
    return []


def _check_polymer(name: str, kind: str, body: dict, errors: list[str]) -> str | None:
    sequence = body.get("sequence")
    if not isinstance(sequence, str) or not sequence:
        errors.append(f"{name}: 'sequence' must be a non-empty string")
        return None
    bad = sorted(set(sequence) - ALPHABETS[kind])
    if bad:
        letters = "".join(sorted(ALPHABETS[kind]))
        errors.append(f"{name}: sequence has invalid characters {''.join(bad)!r} (allowed: upper-case {letters})")
    for position_error in _modification_errors(body.get("modifications"), len(sequence)):
        errors.append(f"{name}: {position_error}")
    if "cyclic" in body and not isinstance(body["cyclic"], bool):
        errors.append(f"{name}: 'cyclic' must be true or false")
    return sequence


def _modification_errors(modifications: Any, length: int) -> list[str]:
    if modifications is None:
        return []
    if not isinstance(modifications, list):
        return ["'modifications' must be a list of {position, ccd}"]
    errors = []
    for mod in modifications:
        if not isinstance(mod, dict) or set(mod) != {"position", "ccd"}:
            errors.append(f"modification {mod!r} must have exactly 'position' and 'ccd'")
            continue
        position, ccd = mod["position"], mod["ccd"]
        if not _is_int(position) or not 1 <= position <= length:
            errors.append(f"modification position {position!r} is outside the sequence (1..{length})")
        if not isinstance(ccd, str) or not ccd:
            errors.append(f"modification at {position!r}: 'ccd' must be a CCD code")
    return errors


def _check_ligand(name: str, body: dict, errors: list[str]) -> tuple | None:
    has_smiles, has_ccd = "smiles" in body, "ccd" in body
    if has_smiles == has_ccd:
        errors.append(f"{name}: a ligand needs exactly one of 'smiles' or 'ccd'")
        return None
    if has_smiles:
        smiles = body["smiles"]
        if not isinstance(smiles, str) or not smiles:
            errors.append(f"{name}: 'smiles' must be a non-empty string")
            return None
        try:
            heavy_atom_count(smiles)
        except SmilesError as e:
            errors.append(f"{name}: invalid SMILES {smiles!r}: {e}")
        return ("smiles", smiles)
    ccd = body["ccd"]
    codes = [ccd] if isinstance(ccd, str) else ccd
    if not isinstance(codes, list) or not codes or not all(isinstance(c, str) and c for c in codes):
        errors.append(f"{name}: 'ccd' must be a CCD code or a non-empty list of codes")
        return None
    return ("ccd", tuple(codes))


# ---------------------------------------------------------------------------------------------- msa


def _check_msas(parsed: _Doc, errors: list[str]) -> None:
    custom, auto = [], []
    msa_by_sequence: dict[str, Any] = {}
    for entity in parsed.entities:
        if entity.kind != "protein":
            continue
        msa = _msa_value(entity.body)
        name = f"protein {'/'.join(entity.ids)}"
        if msa is None:
            auto += entity.ids
        elif not isinstance(msa, str) or not (msa == MSA_EMPTY or msa.endswith(MSA_SUFFIXES)):
            errors.append(f"{name}: 'msa' must be 'empty' or a path ending in .a3m or .csv, got {msa!r}")
        elif msa != MSA_EMPTY:
            custom += entity.ids
        if entity.sequence is not None:
            previous = msa_by_sequence.setdefault(entity.sequence, msa)
            if previous != msa:
                errors.append(f"{name}: proteins with the same sequence must share the same msa")
    if custom and auto:
        errors.append(
            f"cannot mix MSA files (chains {', '.join(custom)}) with server-generated MSAs "
            f"(chains {', '.join(auto)} have no msa)"
        )


# ---------------------------------------------------------------------------------------------- constraints


def _check_constraints(constraints: Any, parsed: _Doc, errors: list[str]) -> None:
    if constraints is None:
        return
    if not isinstance(constraints, list):
        errors.append("'constraints' must be a list")
        return
    checkers = {"bond": _check_bond, "pocket": _check_pocket, "contact": _check_contact}
    for index, constraint in enumerate(constraints):
        where = f"constraints[{index}]"
        if not isinstance(constraint, dict) or len(constraint) != 1 or next(iter(constraint)) not in checkers:
            errors.append(f"{where} must have exactly one key: bond, pocket or contact")
            continue
        kind, body = next(iter(constraint.items()))
        if not isinstance(body, dict):
            errors.append(f"{where}: {kind} must be a mapping")
            continue
        checkers[kind](f"{where} ({kind})", body, parsed, errors)


def _check_bond(where: str, body: dict, parsed: _Doc, errors: list[str]) -> None:
    for key in ("atom1", "atom2"):
        atom = body.get(key)
        if not (isinstance(atom, list) and len(atom) == 3 and isinstance(atom[2], str) and atom[2]):
            errors.append(f"{where}: '{key}' must be [chain, residue index, atom name], got {atom!r}")
            continue
        _check_residue(f"{where} {key}", atom[0], atom[1], parsed, errors)
        _check_bond_atom(f"{where} {key}", atom[0], atom[1], atom[2], parsed, errors)


def _check_bond_atom(where: str, chain: Any, residue: Any, name: str, parsed: _Doc, errors: list[str]) -> None:
    """A bond names an atom boltz knows by name: of a CCD ligand (checked against the CCD by the prepare step), or
    of a canonical residue (checked here, boltz 2.2.1 const.ref_atoms). Never of a SMILES ligand: boltz names its
    atoms itself (element + canonical rank), so a name in the spec may land on another atom, silently."""
    entity = parsed.chain_entity.get(chain) if parsed.has_chain(chain) else None
    if entity is None:
        return
    if entity.kind == "ligand":
        if "smiles" in entity.body:
            errors.append(
                f"{where}: chain {chain} is a SMILES ligand, whose atom names boltz makes up itself (element + "
                "canonical rank): a bond cannot name one reliably; give the ligand as a CCD code, or drop the bond"
            )
        return
    sequence = entity.sequence or ""
    if not _is_int(residue) or not 1 <= residue <= len(sequence):
        return  # _check_residue said so
    modified = {m.get("position") for m in entity.body.get("modifications") or [] if isinstance(m, dict)}
    atoms = CANONICAL_ATOMS.get(entity.kind, {}).get(sequence[residue - 1].upper())
    if residue in modified or atoms is None or name in atoms:
        return  # a modified residue's atoms come from its CCD entry: the prepare step checks those
    errors.append(
        f"{where}: residue {residue} of chain {chain} ({sequence[residue - 1]}) has no atom {name!r}; "
        f"its atoms are {', '.join(sorted(atoms))}"
    )


def _check_pocket(where: str, body: dict, parsed: _Doc, errors: list[str]) -> None:
    binder = body.get("binder")
    if not parsed.has_chain(binder):
        errors.append(f"{where}: binder {binder!r} is not a chain of the input")
    contacts = body.get("contacts")
    if not isinstance(contacts, list) or not contacts:
        errors.append(f"{where}: 'contacts' must be a non-empty list of [chain, residue index or atom name]")
    else:
        for contact in contacts:
            _check_token(f"{where} contact", contact, parsed, errors)
    _check_distance_and_force(where, body, errors)


def _check_contact(where: str, body: dict, parsed: _Doc, errors: list[str]) -> None:
    for key in ("token1", "token2"):
        _check_token(f"{where} {key}", body.get(key), parsed, errors)
    _check_distance_and_force(where, body, errors)


def _check_token(where: str, token: Any, parsed: _Doc, errors: list[str]) -> None:
    """[chain, residue index] for polymers, [chain, atom name] for ligands."""
    if not (isinstance(token, list) and len(token) == 2):
        errors.append(f"{where}: must be [chain, residue index or atom name], got {token!r}")
        return
    chain, position = token
    if parsed.has_chain(chain) and parsed.chain_kind[chain] == "ligand":
        if not isinstance(position, str) or not position:
            errors.append(f"{where}: ligand chain {chain!r} is addressed by atom name, got {position!r}")
        return
    _check_residue(where, chain, position, parsed, errors)


def _check_residue(where: str, chain: Any, residue: Any, parsed: _Doc, errors: list[str]) -> None:
    if not parsed.has_chain(chain):
        errors.append(f"{where}: chain {chain!r} is not a chain of the input")
        return
    if not _is_int(residue) or residue < 1:
        errors.append(f"{where}: residue index must be an integer >= 1, got {residue!r}")
        return
    sequence = parsed.chain_entity[chain].sequence
    if sequence is not None and residue > len(sequence):
        errors.append(f"{where}: residue {residue} is beyond the end of chain {chain} ({len(sequence)} residues)")


def _check_distance_and_force(where: str, body: dict, errors: list[str]) -> None:
    distance = body.get("max_distance")
    if distance is not None and (not _is_number(distance) or distance <= 0):
        errors.append(f"{where}: 'max_distance' must be a positive number, got {distance!r}")
    if "force" in body and not isinstance(body["force"], bool):
        errors.append(f"{where}: 'force' must be true or false")


# ---------------------------------------------------------------------------------------------- templates


def _check_templates(templates: Any, parsed: _Doc, errors: list[str]) -> None:
    if templates is None:
        return
    if not isinstance(templates, list):
        errors.append("'templates' must be a list")
        return
    proteins = {c for c, kind in parsed.chain_kind.items() if kind == "protein"}
    for index, template in enumerate(templates):
        where = f"templates[{index}]"
        if not isinstance(template, dict):
            errors.append(f"{where} must be a mapping")
            continue
        errors.extend(f"{where}: unknown key {key!r}" for key in template if key not in TEMPLATE_KEYS)
        _check_template(where, template, proteins, errors)


def _check_template(where: str, template: dict, proteins: set[str], errors: list[str]) -> None:
    formats = [k for k in ("cif", "pdb") if k in template]
    if len(formats) != 1 or not isinstance(template[formats[0]], str) or not template[formats[0]]:
        errors.append(f"{where}: needs exactly one of 'cif' or 'pdb' with a file path")
    chain_ids = _as_list(template.get("chain_id"))
    template_ids = _as_list(template.get("template_id"))
    if chain_ids is not None and template_ids is not None and len(chain_ids) != len(template_ids):
        errors.append(f"{where}: 'chain_id' and 'template_id' must list the same number of chains")
    for chain in chain_ids or []:
        if not isinstance(chain, str) or chain not in proteins:
            errors.append(f"{where}: chain {chain!r} is not a protein chain of the input")
    force = template.get("force", False)
    if not isinstance(force, bool):
        errors.append(f"{where}: 'force' must be true or false")
    elif force and not _is_number(template.get("threshold")):
        errors.append(f"{where}: 'force: true' needs a numeric 'threshold' (in Angstrom)")


def _as_list(value: Any) -> list | None:
    if value is None:
        return None
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------------------------------------- properties


def _check_properties(properties: Any, parsed: _Doc, errors: list[str]) -> None:
    if properties is None:
        return
    if not isinstance(properties, list):
        errors.append("'properties' must be a list")
        return
    binders = []
    for index, prop in enumerate(properties):
        if not (isinstance(prop, dict) and len(prop) == 1 and isinstance(prop.get("affinity"), dict)):
            errors.append(f"properties[{index}] must be {{affinity: {{binder: <ligand chain id>}}}}")
            continue
        binders.append(prop["affinity"].get("binder"))
    if len(binders) > 1:
        errors.append("only one affinity property is supported")
    for binder in binders[:1]:
        _check_affinity_binder(binder, parsed, errors)


def _check_affinity_binder(binder: Any, parsed: _Doc, errors: list[str]) -> None:
    if not isinstance(binder, str):
        errors.append(f"affinity binder must be a single chain id, got {binder!r}")
        return
    if binder not in parsed.chain_kind:
        errors.append(f"affinity binder {binder!r} is not a chain of the input")
        return
    entity = parsed.chain_entity[binder]
    if entity.kind != "ligand":
        errors.append(f"affinity binder {binder!r} is a {entity.kind}; affinity is only supported for ligands")
        return
    copies = [c for e in parsed.entities if e.ligand_key and e.ligand_key == entity.ligand_key for c in e.ids]
    if len(copies) > 1:
        errors.append(f"affinity binder {binder!r} has several copies ({', '.join(copies)}); use a single copy")
    if entity.ligand_key and entity.ligand_key[0] == "ccd" and len(entity.ligand_key[1]) > 1:
        errors.append(f"affinity binder {binder!r} is a multi-residue CCD ligand; affinity needs a single residue")
    if entity.ligand_key and entity.ligand_key[0] == "smiles":
        _check_affinity_size(binder, entity.ligand_key[1], errors)


def _check_affinity_size(binder: str, smiles: str, errors: list[str]) -> None:
    try:
        count = heavy_atom_count(smiles)
    except SmilesError:
        return  # already reported with the ligand
    if count > AFFINITY_MAX_HEAVY_ATOMS:
        errors.append(f"ligand {binder} has {count} heavy atoms; affinity supports at most {AFFINITY_MAX_HEAVY_ATOMS}")


# ---------------------------------------------------------------------------------------------- helpers


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
