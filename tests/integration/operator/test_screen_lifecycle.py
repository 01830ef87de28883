"""BoltzScreen from `kubectl apply` to a ranked table, on the real control plane: kwok plays the prepare pod (CPU),
the shard pods (GPU nodes, one per index) and the rank pod (CPU), with the summaries real workers would write."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from test_prediction_lifecycle import condition, jobs, ready_cache, wait_phase

from boltz_contract import ErrorClass, RunSummary
from boltz_contract.msa import ChainMsa
from boltz_contract.screen import RankedLigand
from support.manifests import as_input, failure, merge_played, played

pytestmark = pytest.mark.cluster

EXAMPLE = yaml.safe_load((Path(__file__).resolve().parents[3] / "examples" / "screen.yaml").read_text())
PREPARED = RunSummary(ok=True, ligands_total=9, ligands_failed=1, shards=3, msas=[ChainMsa(chain="A", source="empty")])
TOP = [
    RankedLigand(rank=1, id="osimertinib", affinity_probability_binary=0.91, affinity_pred_value=-1.2),
    RankedLigand(rank=2, id="erlotinib", affinity_probability_binary=0.88, affinity_pred_value=-0.8),
]


def shard_ok(index: int, done: int) -> dict:
    return played(RunSummary(ok=True, shard_index=index, ligands_done=done), only=f"index-{index}")


def screen(name: str, pod_metadata: dict, **spec_changes) -> dict:
    spec = copy.deepcopy(EXAMPLE["spec"])
    spec["target"]["sequences"][0]["protein"]["msa"] = {"empty": True}
    spec["results"] = {"s3": {"uri": "s3://results/boltz", "endpoint": "http://s3.example:8333"}}
    return {**EXAMPLE, "metadata": {"name": name}, "spec": {**spec, "podMetadata": pod_metadata, **spec_changes}}


def played_screen(*shards: dict, rank: RunSummary | None = None) -> dict:
    ranked = rank or RunSummary(ok=True, ligands_total=9, ligands_done=8, ligands_failed=1, top_ligands=TOP)
    return merge_played(
        played(PREPARED, only="screen-prepare", run_duration="1s"),
        *shards,
        played(ranked, only="screen-rank"),
    )


def test_a_screen_prepares_on_cpu_runs_gpu_shards_then_ranks(cluster, namespace, operator):
    ready_cache(cluster, namespace)
    body = screen("egfr", played_screen(shard_ok(0, 3), shard_ok(1, 3), shard_ok(2, 2)), parallelism=2)
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(body))

    done = wait_phase(cluster, "boltzscreen", "egfr", namespace, "Succeeded", timeout=120)
    status = done["status"]
    assert status["ligands"] == "8/9" and status["best"] == 0.91
    assert [t["id"] for t in status["results"]["topLigands"]] == ["osimertinib", "erlotinib"]
    assert status["results"]["table"].endswith("/ranked.csv")
    assert status["results"]["parquet"].endswith("/ranked.parquet")  # kept by the CRD schema, not pruned
    assert status["progress"]["shardsSucceeded"] == 3 and status["estimate"]["gpuHours"] > 0
    assert condition(done, "ShardsComplete")["reason"] == "AllShardsSucceeded"

    by_name = {j["metadata"]["name"]: j for j in jobs(cluster, namespace)}
    prepare, shards, rank = by_name["egfr-screenprep"], by_name["egfr-screen"], by_name["egfr-rank"]
    for cpu_job in (prepare, rank):
        limits = cpu_job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert "nvidia.com/gpu" not in limits
    spec = shards["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 3, 2)
    container = spec["template"]["spec"]["containers"][0]
    assert container["command"] == ["boltz-worker", "screen-shard"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {m["mountPath"]: m.get("readOnly") for m in container["volumeMounts"]}["/models"] is True
    # Each step only after the one before it finished.
    assert shards["metadata"]["creationTimestamp"] >= prepare["status"]["completionTime"]
    assert rank["metadata"]["creationTimestamp"] >= shards["status"]["completionTime"]

    table = cluster.kubectl("get", "boltzscreens", "-n", namespace).stdout
    assert table.split("\n")[0].split() == ["NAME", "PHASE", "LIGANDS", "FAILED", "BEST", "AGE"]
    assert table.split("\n")[1].split()[:5] == ["egfr", "Succeeded", "8/9", "1", "0.91"]


def test_a_failed_shard_above_the_threshold_is_ranked_below_it_fails_without_ranking(cluster, namespace, operator):
    ready_cache(cluster, namespace)
    summary, code = failure(ErrorClass.GPU_OUT_OF_MEMORY, "out of GPU memory on every ligand of this shard")
    lost = played(summary, exit_code=code, only="index-1")
    partial = screen("partial", played_screen(shard_ok(0, 3), lost, shard_ok(2, 2)), minSuccessfulShardFraction=0.6)
    lost_too_many = screen("lost", played_screen(shard_ok(0, 3), lost, shard_ok(2, 2)))
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(partial, lost_too_many))

    ranked = wait_phase(cluster, "boltzscreen", "partial", namespace, "Succeeded", timeout=120)
    assert condition(ranked, "ShardsComplete")["reason"] == "PartialSuccess"
    failed = wait_phase(cluster, "boltzscreen", "lost", namespace, "Failed", timeout=120)
    assert "shards" in failed["status"]["message"]
    assert "lost-rank" not in [j["metadata"]["name"] for j in jobs(cluster, namespace)]


def test_a_library_prepare_refuses_fails_the_screen_before_any_gpu(cluster, namespace, operator):
    ready_cache(cluster, namespace)
    summary, code = failure(ErrorClass.INVALID_INPUT, "library: duplicate ids: erlotinib (lines 1 and 7)")
    body = screen("dup", played(summary, exit_code=code, only="screen-prepare"))
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(body))
    failed = wait_phase(cluster, "boltzscreen", "dup", namespace, "Failed")
    assert failed["status"]["message"] == "prepare: library: duplicate ids: erlotinib (lines 1 and 7) (no GPU was used)"
    assert [j["metadata"]["name"] for j in jobs(cluster, namespace) if "dup" in j["metadata"]["name"]] == [
        "dup-screenprep"
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"ligandChain": "A"}, "ligandChain must not be a chain id of the target"),
        (
            {"library": {"inline": [{"id": "x", "smiles": "CCO"}, {"id": "x", "smiles": "CCN"}]}},
            "Duplicate value",
        ),
        ({"library": {"inline": [{"id": "a b", "smiles": "CCO"}]}}, "should match"),
        ({"ligandsPerShard": 0}, "should be greater than or equal to 1"),
        ({"library": {"s3": {"uri": "s3://bucket/libraries/kinase"}}}, "library.format: give smi, csv or sdf"),
        ({"library": {"configMapKeyRef": {"name": "l", "key": "lib.txt"}}}, "library.format: give smi, csv or sdf"),
    ],
)
def test_invalid_screens_are_rejected_at_apply(cluster, namespace, operator, change, expected):
    body = screen("rejected", {"annotations": {}}, **change)
    result = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body), check=False)
    assert result.returncode != 0 and expected in result.stderr, result.stderr


@pytest.mark.parametrize("example", ["screen.yaml", "screen-s3.yaml"])
def test_the_examples_apply_as_written(cluster, namespace, operator, example):
    text = (Path(__file__).resolve().parents[3] / "examples" / example).read_text()
    result = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=text, check=False)
    assert result.returncode == 0, result.stderr
