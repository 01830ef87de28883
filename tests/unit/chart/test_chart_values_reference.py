"""values.yaml and values.schema.json describe the same values, each one documented: the README's configuration
reference is generated from the schema (`python tests/unit/chart/chart_helpers.py reference`)."""

from __future__ import annotations

from chart_helpers import DEFAULT_VALUES, REPO, SCHEMA, reference_markdown, schema_leaves


def value_paths(values: dict, schema: dict, prefix: str = "") -> set[str]:
    """Dotted paths of values.yaml, walking into objects whose schema lists fixed properties."""
    paths = set()
    for key, value in values.items():
        sub = schema.get("properties", {}).get(key, {})
        if isinstance(value, dict) and "properties" in sub:
            paths |= value_paths(value, sub, f"{prefix}{key}.")
        else:
            paths.add(f"{prefix}{key}")
    return paths


def test_every_value_has_a_schema_entry_with_a_description_and_the_other_way_round():
    documented = {path for path, _ in schema_leaves()}
    assert value_paths(DEFAULT_VALUES, SCHEMA) == documented
    for path, sub in schema_leaves():
        assert sub.get("description", "").strip(), f"{path} has no description"


def test_objects_with_fixed_keys_refuse_unknown_ones():
    def walk(schema: dict, path: str = "<root>"):
        if "properties" in schema:
            assert schema.get("additionalProperties") is False, f"{path} accepts unknown keys"
            for key, sub in schema["properties"].items():
                walk(sub, f"{path}.{key}")
        if isinstance(schema.get("items"), dict):
            walk(schema["items"], f"{path}[]")

    walk(SCHEMA)


def test_the_reference_table_lists_every_value_with_its_default():
    table = reference_markdown()
    assert table.count("\n") == len(schema_leaves()) + 1
    assert "| `gpu.defaultCount` | `1` |" in table
    assert "| `metrics.port` | `9090` |" in table


def test_the_readme_shows_the_current_reference_table():
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- BEGIN values reference -->\n")[1].split("\n<!-- END values reference -->")[0]
    assert block == reference_markdown().strip(), (
        "regenerate: .venv/bin/python tests/unit/chart/chart_helpers.py reference"
    )
