#!/usr/bin/env python3
"""`make demo`: the user's path on the local control plane, end to end.

    local cluster up -> CRDs + the chart's RBAC -> operator running (as the chart's ServiceAccount)
    -> kubectl apply examples/modelcache.yaml and examples/prediction.yaml -> kubectl wait -> kubectl get
    -> kubectl apply examples/modelcache-boltzgen.yaml and examples/campaign.yaml (20 design shards, then
       one filter Job) -> kubectl wait -> kubectl get

The nodes are kwok fakes: there are no GPUs and Boltz does not run. kwok plays the worker pods, and the demo
adds pod annotations (spec.podMetadata) telling it what a real worker would report. Everything else (CRDs,
CEL validation, the operator, Jobs, scheduling onto GPU nodes, status, printer columns) is real.

The demo's operator stops with it; `make demo-operator` (`hack/demo.py operator`) runs the same operator again, in
the foreground until Ctrl-C, so that what the user creates next on the demo's cluster is reconciled.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from boltz_contract import RunSummary  # noqa: E402
from boltz_contract.screen import RankedLigand  # noqa: E402
from support.cluster_fixtures import start_cluster  # noqa: E402
from support.manifests import filter_ok, merge_played, played, populate_ok, shard_ok  # noqa: E402
from support.operator_fixtures import OperatorProcess, install_crds_and_rbac, operator_kubeconfig  # noqa: E402

NAMESPACE = "boltz-demo"
# The kubectl plugin, installed into the project's venv by `make venv` (package plugin/).
PLUGIN = Path(sys.executable).parent / "kubectl-boltz"
RESULTS = "s3://boltz-results/demo"
BANNER = "=" * 100


def say(text: str) -> None:
    print(f"\n{BANNER}\n{text}\n{BANNER}", flush=True)


def demo_operator(cluster) -> OperatorProcess:
    """The demo's operator (not started): as the chart's ServiceAccount, results defaulting to RESULTS, its log in
    .cluster/demo/operator.log."""
    state = cluster.state_dir / "demo"
    state.mkdir(exist_ok=True)
    return OperatorProcess(
        cluster,
        operator_kubeconfig(cluster, state / "operator.kubeconfig"),
        state / "operator.log",
        env={"BOLTZ_OPERATOR_DEFAULT_RESULTS": f'{{"s3_uri": "{RESULTS}"}}'},
    )


def run_operator() -> int:
    """`make demo-operator`: the demo's operator on the running cluster, in the foreground until Ctrl-C."""
    cluster = start_cluster()  # the running one (started when missing)
    install_crds_and_rbac(cluster)
    operator = demo_operator(cluster).start()
    print(f"The demo's operator is running (log: {operator.log_path}); Ctrl-C stops it.", flush=True)
    try:
        return operator.proc.wait() if operator.proc else 1
    except KeyboardInterrupt:
        return 0
    finally:
        operator.stop()


def main() -> int:
    cluster = start_cluster()
    install_crds_and_rbac(cluster)
    cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    operator = demo_operator(cluster).start()
    try:
        say(
            "SIMULATED: kwok plays the GPU nodes and the worker pods; Boltz does not run and no weights are downloaded.\n"
            "The demo adds spec.podMetadata annotations that tell kwok what a real worker would report."
        )
        cache = yaml.safe_load((REPO / "examples/modelcache.yaml").read_text())
        cache["spec"]["populateJob"] = {"podMetadata": played(populate_ok(), run_duration="2s")}
        prediction = yaml.safe_load((REPO / "examples/prediction.yaml").read_text())
        uri = f"{RESULTS}/{NAMESPACE}/egfr-erlotinib"
        simulated = RunSummary(
            ok=True,
            results_uri=uri,
            confidence_score=0.87,
            ptm=0.9,
            iptm=0.83,
            complex_plddt=0.88,
            affinity_pred_value=-0.97,
            affinity_probability_binary=0.71,
            structures=["egfr-erlotinib_model_0.cif"],
        )
        prediction["spec"]["podMetadata"] = played(simulated, run_duration="3s")

        run(cluster, "apply", "-f", "-", input=yaml.safe_dump_all([cache, prediction]))
        run(cluster, "get", "boltzmodelcaches,boltzpredictions")
        run(cluster, "wait", "--for=condition=Complete", "boltzprediction/egfr-erlotinib", "--timeout=120s")
        run(cluster, "get", "boltzmodelcaches,boltzpredictions,jobs")
        run(cluster, "get", "boltzprediction", "egfr-erlotinib", "-o", "jsonpath={.status.results}")

        say(
            "A virtual screen: examples/screen.yaml (9 ligands vs the EGFR kinase, 3 per GPU shard). The target is\n"
            "prepared once on CPU, each shard runs one boltz predict over its ligands, one rank Job makes the table.\n"
            "SIMULATED as above (one entry, the decoy, played as refused: a failed row, never a failed screen)."
        )
        screen = yaml.safe_load((REPO / "examples/screen.yaml").read_text())
        screen["spec"]["target"]["sequences"][0]["protein"]["msa"] = {"empty": True}  # no MSA server in the demo
        ligand_ids = [ligand["id"] for ligand in screen["spec"]["library"]["inline"]]
        top = [
            RankedLigand(rank=k + 1, id=i, affinity_probability_binary=round(0.93 - k * 0.07, 2),
                         affinity_pred_value=round(-1.4 + k * 0.3, 2))
            for k, i in enumerate(ligand_ids[:5])
        ]  # fmt: skip
        screen["spec"]["podMetadata"] = merge_played(
            played(RunSummary(ok=True, ligands_total=9, ligands_failed=0, shards=3), only="screen-prepare",
                   run_duration="2s"),
            *[played(RunSummary(ok=True, shard_index=i, ligands_done=3), only=f"index-{i}", run_duration="2s")
              for i in range(3)],
            played(RunSummary(ok=True, ligands_total=9, ligands_done=8, ligands_failed=1, top_ligands=top),
                   only="screen-rank"),
        )  # fmt: skip
        run(cluster, "apply", "-f", "-", input=yaml.safe_dump(screen))
        run(cluster, "wait", "--for=condition=Complete", "boltzscreen/egfr-kinase-inhibitors", "--timeout=120s")
        run(cluster, "get", "boltzscreens")
        run(cluster, "get", "boltzscreen", "egfr-kinase-inhibitors", "-o", "jsonpath={.status.results.topLigands[0]}")

        say(
            "A BoltzGen campaign: examples/campaign.yaml (2000 designs in 20 shards, 10 at a time), then one\n"
            "filter Job ranks them. SIMULATED as above: each shard pod 'runs' 2 s."
        )
        boltzgen_cache = yaml.safe_load((REPO / "examples/modelcache-boltzgen.yaml").read_text())
        boltzgen_cache["spec"]["populateJob"] = {"podMetadata": played(populate_ok(), run_duration="2s")}
        campaign = yaml.safe_load((REPO / "examples/campaign.yaml").read_text())
        shards = campaign["spec"]["shards"]
        per_shard = campaign["spec"]["numDesigns"] // shards
        campaign["spec"]["podMetadata"] = merge_played(
            *[played(shard_ok(i, per_shard), only=f"index-{i}", run_duration="2s") for i in range(shards)],
            played(
                filter_ok(list(range(shards)), campaign["spec"]["numDesigns"], campaign["spec"]["budget"]),
                only="filter",
            ),
        )
        # The target structure the spec names (a real campaign puts the mmCIF of PDB 6M1U here; kwok reads nothing).
        target = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "pdl1-target"},
            "data": {"6m1u.cif": "data_6M1U\n# placeholder\n"},
        }
        run(cluster, "apply", "-f", "-", input=yaml.safe_dump_all([target, boltzgen_cache, campaign]))
        run(cluster, "wait", "--for=condition=Complete", "boltzgencampaign/pdl1-binder", "--timeout=180s")
        run(cluster, "get", "boltzgencampaigns,jobs")
        run(cluster, "get", "boltzgencampaign", "pdl1-binder", "-o", "jsonpath={.status.results.topDesigns[0]}")
        print(f"\n$ kubectl boltz -n {NAMESPACE} status egfr-erlotinib", flush=True)
        subprocess.run(
            [str(PLUGIN), "--kubeconfig", str(cluster.kubeconfig), "-n", NAMESPACE, "status", "egfr-erlotinib"]
        )
        say("Done. The cluster keeps running; the demo's operator stops now. To have what you create next reconciled,\n"
            "run it again in another terminal: make demo-operator (Ctrl-C stops it).\n\n"
            "Try these (full paths: they work in any shell, whatever kubectl is on PATH):\n"
            + "\n".join(next_steps(cluster)) + "\n\n"
            + "Or put the built kubectl and the plugin first on your PATH, then type `kubectl` and `kubectl boltz`:\n"
            + shell_setup(cluster) + "\nStop the cluster: make cluster-down")  # fmt: skip
        return 0
    finally:
        operator.stop()


def next_steps(cluster, namespace: str = NAMESPACE, prediction: str = "egfr-erlotinib") -> list[str]:
    """Commands for the user to try next, with the full paths of the kubectl this project built and of the plugin
    (a machine may carry an older kubectl of its own on PATH, and `make demo` cannot change the user's shell)."""
    q = shlex.quote
    flags = f"--kubeconfig {q(str(cluster.kubeconfig))} -n {q(namespace)}"
    kubectl = f"{q(str(cluster.bin_dir / 'kubectl'))} {flags}"
    plugin = f"{q(str(PLUGIN))} {flags}"
    example = REPO / "tests" / "fixtures" / "boltz_inputs" / "affinity.yaml"
    return [
        f"{kubectl} describe boltzprediction {q(prediction)}",
        f"{kubectl} get boltzpredictions,boltzscreens,boltzgencampaigns",
        f"{plugin} status {q(prediction)}",
        f"{plugin} predict {q(str(example))} --name my-affinity --dry-run=client -o yaml",
    ]


def shell_setup(cluster) -> str:
    """One line that makes plain `kubectl` the built one and `kubectl boltz` find the plugin, in this shell."""
    path = f"{shlex.quote(str(cluster.bin_dir))}:{shlex.quote(str(PLUGIN.parent))}"
    return f'export PATH={path}:"$PATH" KUBECONFIG={shlex.quote(str(cluster.kubeconfig))}'


def run(cluster, *args: str, input: str | None = None) -> None:
    print(f"\n$ kubectl -n {NAMESPACE} {' '.join(args)}", flush=True)
    result = subprocess.run(
        [str(cluster.bin_dir / "kubectl"), "--kubeconfig", str(cluster.kubeconfig), "-n", NAMESPACE, *args],
        input=input,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed with {result.returncode}")


if __name__ == "__main__":
    sys.exit(run_operator() if sys.argv[1:] == ["operator"] else main())
