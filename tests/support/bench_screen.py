"""Measuring tools for the screen benchmark (tests/bench/test_screen_scaling.py): the campaign bench's watch recorder
pointed at BoltzScreens, the screen kwok plays (prepare reports the library size, shards run a fixed time, rank
reports the ranked table), and the operator's peak memory per run.

The library reaches the operator only as prepare's summary (ligands_total, shards): kwok plays that summary, so a
100,000-ligand screen needs no library file; the spec's inline library is the example's nine ligands.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

from boltz_contract import RunSummary
from boltz_contract.msa import ChainMsa
from boltz_contract.screen import RankedLigand
from support import bench_campaign
from support.bench_campaign import BENCH_NODE_LABEL, BENCH_TAINT, CampaignRecorder
from support.bench_recording import Recorder
from support.manifests import EXAMPLES, merge_played, played

SCREENS = "boltzscreens"
SCREEN_RECORD = "campaign"  # the recorder's kind for the watched custom resource (here: the screens' phases)
TOP = [RankedLigand(rank=i + 1, id=f"lig{i:06d}", affinity_probability_binary=0.9 - i / 100) for i in range(5)]


# ---------------------------------------------------------------------------------------------- watch recorder


def _record_screens(kubeconfig: str, namespace: str, out_path: str) -> None:
    """Child process: bench_campaign's recorder with BoltzScreens in place of campaigns (it lists the plural named
    by the module global, which this fresh process sets before it starts). Its "campaign" lines are the screens'
    status.phase values; pods and Jobs as in the campaign bench."""
    bench_campaign.CAMPAIGNS = SCREENS
    bench_campaign._record(kubeconfig, namespace, out_path)


class ScreenRecorder(CampaignRecorder):
    """Pods, Jobs and BoltzScreens: first sightings, each pod's Job and completion index (CampaignRecorder's)."""

    def __init__(self, kubeconfig: Path, namespace: str, out_path: Path):
        Recorder.__init__(self, _record_screens, kubeconfig, namespace, out_path)
        self.pods = {}

    def screen_at(self, name: str, phase: str) -> float | None:
        return self.at(SCREEN_RECORD, name, phase)


# ---------------------------------------------------------------------------------------------- the screen


def screen_body(name: str, shards: int, ligands: int, parallelism: int, shard_seconds: float) -> dict:
    """examples/screen.yaml as a `shards`-shard screen of `ligands` ligands on the bench's GPU nodes: kwok runs
    every pod (prepare, each shard, rank) `shard_seconds` and exits 0; prepare reports `ligands` ligands in `shards`
    shards (ligandsPerShard agrees), rank the whole library done. No per-index annotation: the operator reads no
    shard's summary unless it failed, and 200 of them would weigh on every pod write."""
    import yaml

    example = yaml.safe_load((EXAMPLES / "screen.yaml").read_text())
    spec = copy.deepcopy(example["spec"])
    spec["target"]["sequences"][0]["protein"]["msa"] = {"empty": True}  # no MSA server, no MSA gate
    prepared = RunSummary(
        ok=True, ligands_total=ligands, ligands_failed=0, shards=shards, msas=[ChainMsa(chain="A", source="empty")]
    )
    ranked = RunSummary(ok=True, ligands_total=ligands, ligands_done=ligands, ligands_failed=0, top_ligands=TOP)
    pods = merge_played(
        played(run_duration=f"{int(shard_seconds * 1000)}ms"),
        played(prepared, only="screen-prepare"),
        played(ranked, only="screen-rank"),
    )
    spec.update(
        results={"s3": {"uri": "s3://results/boltz", "endpoint": "http://s3.example:8333"}},
        ligandsPerShard=math.ceil(ligands / shards),
        parallelism=parallelism,
        retriesPerShard=0,
        minSuccessfulShardFraction=1.0,
        podMetadata=pods,
        resources={
            "gpus": 1,
            "nodeSelector": {BENCH_NODE_LABEL: "true"},
            "tolerations": [{"key": BENCH_TAINT, "operator": "Exists", "effect": "NoSchedule"}],
        },
    )
    return {"apiVersion": example["apiVersion"], "kind": example["kind"], "metadata": {"name": name}, "spec": spec}


# ---------------------------------------------------------------------------------------------- memory


def reset_peak_rss(pid: int) -> None:
    """Set the process's VmHWM (peak RSS) back to its current RSS (clear_refs 5, Linux >= 4.0), so that VmHWM read
    after a run is that run's peak."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
