"""`logs` (and the other follow commands) over a fake cluster: which pod, and the flags it refuses."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from boltz_kubectl.cli import build_parser, main
from boltz_kubectl.commands import follow
from boltz_kubectl.errors import ExitCode, PluginError
from boltz_kubectl.kube import Kube
from boltz_operator.builders.screen import PREPARE, SHARDS
from boltz_operator.builders.screen import job_name as screen_job


class PodKube(Kube):
    """Objects by (kind, name); pods by job name, each with its completion index; logs are the pod's name."""

    def __init__(self, objects: dict[tuple[str, str], dict], pods: dict[str, list[str]]):
        super().__init__(api=None, namespace="ns")
        self.objects, self.job_pods = objects, pods

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, name))

    def pods(self, job_names: list[str], extra_selector: str = "") -> list[Any]:
        found = []
        for job in job_names:
            for i, pod in enumerate(self.job_pods.get(job, [])):
                if not extra_selector or extra_selector.endswith(f"={i}"):
                    found.append(
                        SimpleNamespace(metadata=SimpleNamespace(name=pod), status=SimpleNamespace(phase="Running"))
                    )
        return found

    def log(self, pod: str, container: str | None = None, tail: int | None = None) -> str:
        return f"log of {pod}\n"


def screen(shards: int | None) -> dict:
    progress = {"shardsTotal": shards} if shards is not None else {}
    return {"kind": "BoltzScreen", "metadata": {"name": "s"}, "status": {"phase": "Screening", "progress": progress}}


def logs(kube: Kube, *argv: str) -> int:
    args = build_parser().parse_args(["logs", *argv])
    return follow.logs(args, kube)


def refusal(kube: Kube, *argv: str) -> PluginError:
    with pytest.raises(PluginError) as raised:
        logs(kube, *argv)
    return raised.value


def test_a_shard_the_screen_does_not_have_is_refused_not_the_prepare_log(capsys):
    prepare, shards = screen_job("s", PREPARE), screen_job("s", SHARDS)
    kube = PodKube({("BoltzScreen", "s"): screen(3)}, {prepare: ["prep-pod"], shards: ["shard0-pod"]})
    assert logs(kube, "s", "--shard", "0") == 0 and capsys.readouterr().out == "log of shard0-pod\n"
    assert str(refusal(kube, "s", "--shard", "7")) == "no shard 7: the screen has 3 shards (0-2)"
    # shard 2 exists but has no pod yet: no prepare log when --shard was given
    assert "no worker pod yet" in str(refusal(kube, "s", "--shard", "2"))
    # without --shard, before the shard Job runs: the prepare step's log
    kube = PodKube({("BoltzScreen", "s"): screen(None)}, {screen_job("s", PREPARE): ["prep-pod"]})
    assert logs(kube, "s") == 0 and capsys.readouterr().out == "log of prep-pod\n"


def test_a_campaign_refuses_a_shard_it_does_not_have():
    campaign = {"kind": "BoltzGenCampaign", "metadata": {"name": "c"}, "status": {"progress": {"shardsTotal": 1}}}
    kube = PodKube({("BoltzGenCampaign", "c"): campaign}, {})
    assert str(refusal(kube, "c", "--shard", "1")) == "no shard 1: the campaign has 1 shard (0)"


def test_negative_shards_and_conflicting_flags_are_usage_errors(capsys):
    for argv in (["--shard", "-1"], ["--prepare", "--rank"], ["--shard", "1", "--rank"], ["--filter", "--shard", "2"]):
        with pytest.raises(SystemExit) as raised:
            build_parser().parse_args(["logs", "x", *argv])
        assert raised.value.code == ExitCode.USAGE
    kube = PodKube({("BoltzScreen", "s"): screen(3)}, {})
    error = refusal(kube, "s", "--filter")
    assert error.code == ExitCode.USAGE and "--filter is not for a boltzscreen" in str(error)
    campaign = {"kind": "BoltzGenCampaign", "metadata": {"name": "c"}, "status": {}}
    assert "--prepare is not for a boltzgencampaign" in str(
        refusal(PodKube({("BoltzGenCampaign", "c"): campaign}, {}), "c", "--prepare")
    )


class SubmitKube(Kube):
    """Objects by (kind, name), no ConfigMaps; records what would be created."""

    def __init__(self, objects: dict[tuple[str, str], dict]):
        super().__init__(api=None, namespace="ns")
        self.objects, self.created = objects, []

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, name))

    @property
    def core(self) -> Any:
        from kubernetes.client.exceptions import ApiException

        def missing(*args, **kwargs):
            raise ApiException(status=404)

        return SimpleNamespace(read_namespaced_config_map=missing)

    def create(self, submission, dry_run: bool = False) -> list[dict[str, Any]]:
        self.created.append((submission.kind, submission.name, dry_run))
        return [submission.resource]


def test_a_name_taken_by_another_kind_is_refused_before_anything_is_created(tmp_path, monkeypatch, capsys):
    p1 = "MKTLLVAGAVALSACSQNDEKPVTEEHRALLEKAG"
    (tmp_path / "t.yaml").write_text(f"version: 1\nsequences:\n  - protein: {{id: A, sequence: {p1}, msa: empty}}\n")
    (tmp_path / "lib.smi").write_text("CCO ethanol\n")
    for kind, command in (
        ("BoltzPrediction", ["screen", str(tmp_path / "t.yaml"), str(tmp_path / "lib.smi")]),
        ("BoltzGenCampaign", ["screen", str(tmp_path / "t.yaml"), str(tmp_path / "lib.smi")]),
        ("BoltzScreen", ["predict", str(tmp_path / "t.yaml")]),
    ):
        for dry_run in ([], ["--dry-run=server"]):
            kube = SubmitKube({(kind, "x"): {"kind": kind, "metadata": {"name": "x"}}})
            monkeypatch.setattr(Kube, "connect", classmethod(lambda cls, *a, k=kube: k))
            assert main([*command, "--name", "x", *dry_run]) == ExitCode.ERROR
            assert f"{kind.lower()}/x already exists" in capsys.readouterr().err
            assert kube.created == []
    kube = SubmitKube({})
    monkeypatch.setattr(Kube, "connect", classmethod(lambda cls, *a, k=kube: k))
    assert main(["predict", str(tmp_path / "t.yaml"), "--name", "x", "--dry-run=server"]) == 0
    assert kube.created == [("BoltzPrediction", "x", True)]


def test_results_into_a_file_is_a_clear_error(tmp_path):
    done = {"kind": "BoltzScreen", "metadata": {"name": "s"}, "status": {"phase": "Succeeded", "results": {}}}
    kube = PodKube({("BoltzScreen", "s"): done}, {})
    (tmp_path / "taken").write_text("x")
    args = build_parser().parse_args(["results", "s", "-o", str(tmp_path / "taken")])
    with pytest.raises(PluginError) as raised:
        follow.results(args, kube)
    assert (
        str(raised.value)
        == f"{tmp_path / 'taken'} exists and is not a directory (-o names the folder to write the files into)"
    )


class ClosedPipe:
    """A stdout whose reader went away (`| head`)."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        import io

        raise io.UnsupportedOperation("fileno")


def test_a_closed_pipe_ends_quietly_and_other_write_errors_are_clear(tmp_path, monkeypatch, capsys):
    fixture = Path(__file__).resolve().parents[2] / "fixtures" / "boltz_inputs" / "prot.yaml"
    monkeypatch.setattr("sys.stdout", ClosedPipe())
    assert main(["predict", str(fixture), "--dry-run=client", "-o", "yaml"]) == ExitCode.ERROR
    assert capsys.readouterr().err == ""

    class Full(ClosedPipe):
        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr("sys.stdout", Full())
    assert main(["predict", str(fixture), "--dry-run=client", "-o", "yaml"]) == ExitCode.ERROR
    assert capsys.readouterr().err == "error: [Errno 28] No space left on device\n"
