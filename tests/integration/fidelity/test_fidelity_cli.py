"""The `boltz predict` command line the worker builds is one that boltz 2.2.1 accepts, option by option."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path

import pytest

from boltz_contract import PredictOptions
from boltz_worker.boltz_runs.boltz_command import build_boltz_argv

EXECUTABLE = ["boltz"]


def every_option_set() -> PredictOptions:
    """PredictOptions with every field away from its default, derived from the model itself so that an option
    added to the contract is covered without editing this test."""
    values = {}
    for name, field in PredictOptions.model_fields.items():
        values[name] = _non_default(name, field.annotation, field.default)
    return PredictOptions(**values)


def _non_default(name: str, annotation, default):
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return next(v for v in typing.get_args(annotation) if v != default)
    if annotation is bool:
        return not default
    kind = args[0] if args else annotation
    if typing.get_origin(kind) is typing.Literal:
        return next(v for v in typing.get_args(kind) if v != default)
    if kind is bool:
        return not default
    if kind is int:
        return 7 if default != 7 else 8
    if kind is float:
        return 1.25 if default != 1.25 else 1.5
    if kind is str:
        return "https://msa.example.org" if "url" in name else "X-Api-Key"
    raise AssertionError(f"every_option_set() does not know how to set PredictOptions.{name}: {annotation}")


def _argv(options: PredictOptions, tmp_path: Path, accelerator: str = "gpu") -> list[str]:
    data = tmp_path / "run.yaml"
    data.write_text("version: 1\nsequences: []\n")  # boltz's DATA argument must exist
    return build_boltz_argv(EXECUTABLE, data, tmp_path / "out", tmp_path / "cache", options, 3, accelerator)


def _flags(argv: list[str]) -> list[str]:
    return [a for a in argv if a.startswith("--")]


@pytest.fixture(scope="module")
def predict_help(boltz_side) -> str:
    proc = boltz_side.boltz("predict", "--help")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_every_option_reaches_the_command_line(tmp_path):
    """Each PredictOptions field changes the argv when set: 'every option set' really covers every option."""
    full = every_option_set()
    for name in PredictOptions.model_fields:
        # The MSA server's settings only matter, and only reach the command line, with the server on.
        base = {"use_msa_server": True} if name.startswith("msa_") else {}
        baseline = _argv(PredictOptions(**base), tmp_path)
        one = PredictOptions(**{**base, name: getattr(full, name)})
        assert _argv(one, tmp_path) != baseline, f"PredictOptions.{name} does not reach the boltz command line"


OPTION_SETS = {"defaults": PredictOptions(), "every-option": every_option_set()}
ACCELERATORS = ("gpu", "cpu")


@pytest.mark.parametrize("options", OPTION_SETS)
def test_every_flag_is_in_boltz_predict_help(options, predict_help, tmp_path):
    missing = [
        flag
        for flag in _flags(_argv(OPTION_SETS[options], tmp_path))
        if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", predict_help)
    ]
    assert not missing, f"boltz 2.2.1 `predict --help` has no {missing}"


@pytest.fixture(scope="module")
def command_lines(boltz_side, tmp_path_factory) -> dict[str, tuple[list[str], dict]]:
    """Every (options, accelerator) argv, parsed by boltz in one process (importing boltz takes seconds)."""
    tmp = tmp_path_factory.mktemp("cli")
    argvs = {
        f"{options}-{accelerator}": _argv(OPTION_SETS[options], tmp, accelerator)[len(EXECUTABLE) + 1 :]
        for options in OPTION_SETS
        for accelerator in ACCELERATORS
    }
    argvs["misspelt"] = [*argvs["defaults-gpu"], "--recycling-steps", "3"]  # boltz spells it --recycling_steps
    cases = tmp / "cases.json"
    cases.write_text(json.dumps(argvs))
    answers = boltz_side("cli", cases)
    return {case: (argvs[case], answers[case]) for case in argvs}


@pytest.mark.parametrize("accelerator", ACCELERATORS)
@pytest.mark.parametrize("options", OPTION_SETS)
def test_boltz_parses_the_command_line_to_the_intended_values(options, accelerator, command_lines):
    """boltz's own click command parses the whole argv (types, choices, flags) to the values we meant."""
    args, answer = command_lines[f"{options}-{accelerator}"]
    assert answer["accepted"], answer.get("error")
    params = answer["params"]
    expected = _expected_params(args)
    wrong = {
        name: (value, params.get(name))
        for name, value in expected.items()
        if not _same(params.get(name), value)
    }  # fmt: skip
    assert not wrong, f"boltz read these options differently (ours, boltz's): {wrong}"
    assert Path(params["data"]) == Path(args[0])
    assert params["accelerator"] == accelerator


def test_an_unknown_option_is_refused_by_the_same_check(command_lines):
    """The check can fail: boltz's parser refuses an option it does not have (a misspelling of one it has)."""
    _, answer = command_lines["misspelt"]
    assert not answer["accepted"]
    assert "--recycling-steps" in answer["error"]


def _expected_params(args: list[str]) -> dict:
    """click parameter name -> the value our argv means (True for a bare flag)."""
    expected = {}
    i = 1  # args[0] is DATA
    while i < len(args):
        name = args[i].lstrip("-").replace("-", "_")
        if i + 1 < len(args) and not args[i + 1].startswith("--"):
            expected[name] = args[i + 1]
            i += 2
        else:
            expected[name] = True
            i += 1
    return expected


def _same(theirs, ours) -> bool:
    if ours is True:
        return theirs is True
    if isinstance(theirs, float):
        return theirs == float(ours)
    return str(theirs) == ours


def test_secrets_reach_boltz_through_the_environment_variables_it_reads(boltz_python):
    """The operator passes MSA server credentials as env vars (never argv): boltz 2.2.1 must read those names."""
    from boltz_contract import ENV_MSA_API_KEY_VALUE

    main = (boltz_python.parent.parent / "lib" / "python3.11" / "site-packages" / "boltz" / "main.py").read_text()
    for var in (ENV_MSA_API_KEY_VALUE, "BOLTZ_MSA_USERNAME", "BOLTZ_MSA_PASSWORD", "BOLTZ_CACHE"):
        assert f'os.environ.get("{var}")' in main, f"boltz 2.2.1 does not read ${var}"
