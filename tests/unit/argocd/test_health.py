"""The Argo CD health checks (argocd/health/*/*/health.lua), run with lupa in Argo CD's Lua sandbox, on objects
captured from real runs on the local control plane (fixtures/, written by
tests/integration/argocd/test_capture_statuses.py), so this layer needs no cluster.

A few cases cannot be captured and are derived from a captured object, each saying so: a status whose message
is missing (the operator always writes one), a phase newer than the scripts, and BoltzGenCampaign phases the
capture runs do not stop at."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from support.argocd import lua_health

REPO = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
HEALTH_DIR = REPO / "argocd" / "health"


CACHE_FAILED = "boltz2/boltz2_conf.ckpt: sha256 0a1b... expected 9f8e..."

# fixture -> (Argo CD health status, message), for objects captured from real runs.
EXPECTED = {
    # BoltzPrediction
    "prediction-no-status": ("Progressing", "waiting for the operator: no status yet"),
    "prediction-waiting-cache-not-ready": (
        "Progressing",
        "WaitingForModelCache: model cache 'default' is Populating; waiting until it is Ready",
    ),
    "prediction-waiting-cache-not-found": (
        "Progressing",
        "WaitingForModelCache: model cache 'default' not found in this namespace: create a "
        "BoltzModelCache named 'default' (see examples/modelcache.yaml)",
    ),
    "prediction-waiting-cache-failed": (
        "Degraded",
        f"model cache 'default' is Failed: {CACHE_FAILED}; the run starts when the cache is fixed and Ready",
    ),
    "prediction-pending": ("Progressing", "Pending: waiting for a GPU"),
    "prediction-queued": ("Progressing", "Queued: the Job is suspended (queued, e.g. by Kueue)"),
    "prediction-running": ("Progressing", "Running: running boltz predict"),
    "prediction-succeeded": ("Healthy", "prediction complete; results: s3://results/boltz/egfr"),
    "prediction-succeeded-spec-changed": (
        "Progressing",
        "waiting for the operator to observe generation 2 (status is for generation 1)",
    ),
    "prediction-failed-invalid-input": ("Degraded", "Failed to process bad.yaml: invalid SMILES 'C1CC'"),
    # BoltzModelCache
    "modelcache-no-status": ("Progressing", "waiting for the operator: no status yet"),
    "modelcache-pending-claim-not-found": (
        "Progressing",
        "Pending: PVC 'weights-not-created-yet' (spec.storage.existingClaim) not found; create it or "
        "remove existingClaim",
    ),
    "modelcache-populating": ("Progressing", "Populating: populating the volume (Job default-populate-1: Pending)"),
    "modelcache-ready": ("Healthy", "3 files, 4190000000 bytes"),
    "modelcache-spec-changed": (
        "Progressing",
        "waiting for the operator to observe generation 2 (status is for generation 1)",
    ),
    "modelcache-failed": ("Degraded", CACHE_FAILED),
    # BoltzGenCampaign
    "campaign-waiting-cache-lacks-bundle": (
        "Degraded",
        "model cache 'boltzgen' does not hold the boltzgen bundle: add boltzgen to its spec.bundles; the "
        "run starts when the cache is Ready",
    ),
    "campaign-designing": ("Progressing", "Designing: 0/2 shards done, 2 running"),
    "campaign-succeeded": ("Healthy", "3 designs selected from 10 (shards merged: 2/2)"),
    "campaign-failed": (
        "Degraded",
        "1 of 2 shards failed after 0 retries each; 1 succeeded, at least 2 needed "
        "(minSuccessfulShardFraction 0.9). Shard errors: shard 0: GPUOutOfMemory: boltzgen run (shard 0): "
        "GPU out of memory",
    ),
}


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def health(obj: dict, open_libs: bool = False) -> tuple[str, str]:
    result = lua_health.health_of(obj, open_libs=open_libs)
    return result["status"], result["message"]


# ------------------------------------------------------------------------------------------------ captured objects


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_captured_objects(name):
    assert health(fixture(name)) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_same_result_with_open_libraries(name):
    # As a built-in script (resource_customizations/ in Argo CD) or with useOpenLibs, all libraries are open.
    assert health(fixture(name), open_libs=True) == EXPECTED[name]


def test_every_fixture_has_an_expectation_and_is_small():
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == sorted(EXPECTED)
    for path in FIXTURES.glob("*.json"):
        obj = json.loads(path.read_text())
        assert "managedFields" not in obj["metadata"], path.name
        assert path.stat().st_size < 8192, path.name


def test_the_fixtures_are_what_their_names_say():
    def phase(name):
        return (fixture(name).get("status") or {}).get("phase")

    def reason(name, type_):
        return next(c["reason"] for c in fixture(name)["status"]["conditions"] if c["type"] == type_)

    assert "status" not in fixture("prediction-no-status") and "status" not in fixture("modelcache-no-status")
    assert reason("prediction-waiting-cache-not-ready", "ModelCacheReady") == "ModelCacheNotReady"
    assert reason("prediction-waiting-cache-not-found", "ModelCacheReady") == "ModelCacheNotFound"
    assert reason("prediction-waiting-cache-failed", "ModelCacheReady") == "ModelCacheFailed"
    assert reason("prediction-failed-invalid-input", "Failed") == "InvalidInput"
    assert reason("modelcache-pending-claim-not-found", "Ready") == "ClaimNotFound"
    assert [
        phase(n) for n in ("prediction-pending", "prediction-queued", "prediction-running", "prediction-succeeded")
    ] == ["Pending", "Queued", "Running", "Succeeded"]
    for name in ("prediction-succeeded-spec-changed", "modelcache-spec-changed"):
        obj = fixture(name)
        assert obj["metadata"]["generation"] == 2 and obj["status"]["observedGeneration"] == 1
        assert phase(name) in ("Succeeded", "Ready")


def test_degraded_says_what_the_status_says():
    for name in ("prediction-failed-invalid-input", "prediction-waiting-cache-failed", "modelcache-failed"):
        assert health(fixture(name)) == ("Degraded", fixture(name)["status"]["message"])


# ------------------------------------------------------------------------------------------------ derived objects


def test_a_failed_prediction_without_a_message_uses_the_failed_condition():
    obj = fixture("prediction-failed-invalid-input")  # derived: the operator always writes status.message
    del obj["status"]["message"]
    assert health(obj) == ("Degraded", "Failed to process bad.yaml: invalid SMILES 'C1CC'")
    obj["status"]["conditions"] = []
    assert health(obj) == ("Degraded", "prediction failed")


def test_a_prediction_blocked_by_a_failed_cache_without_a_message_uses_the_condition():
    obj = fixture("prediction-waiting-cache-failed")  # derived
    del obj["status"]["message"]
    assert health(obj) == ("Degraded", obj["status"]["conditions"][0]["message"])


def test_a_phase_newer_than_the_script_is_progressing():
    obj = fixture("prediction-running")  # derived: a phase a later operator might add
    obj["status"]["phase"] = "Uploading"
    del obj["status"]["message"]
    assert health(obj) == ("Progressing", "Uploading")
    cache = fixture("modelcache-populating")
    cache["status"]["phase"] = "Verifying"
    assert health(cache)[0] == "Progressing"


def test_a_status_without_a_phase_is_progressing():
    obj = fixture("prediction-running")  # derived
    del obj["status"]["phase"]
    assert health(obj) == ("Progressing", "waiting for the operator: no status yet")


def test_a_status_of_the_current_generation_is_not_stale():
    obj = fixture("prediction-succeeded-spec-changed")  # derived: what the operator writes a moment later
    obj["status"]["observedGeneration"] = 2
    assert health(obj) == EXPECTED["prediction-succeeded"]


# ------------------------------------------------------------------------------------------------ BoltzGenCampaign


def campaign(phase: str | None, message: str | None = None, conditions=(), generation=1, observed=1) -> dict:
    """A BoltzGenCampaign status made up in the operator's conventions, for cases the captures do not hold."""
    obj = {
        "apiVersion": "boltz-operator.io/v1alpha1",
        "kind": "BoltzGenCampaign",
        "metadata": {"name": "binders", "namespace": "lab", "generation": generation},
        "spec": {},
    }
    if phase is not None:
        obj["status"] = {"phase": phase, "observedGeneration": observed, "conditions": list(conditions)}
        if message is not None:
            obj["status"]["message"] = message
    return obj


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (campaign(None), ("Progressing", "waiting for the operator: no status yet")),
        (campaign("Pending", "waiting for a GPU"), ("Progressing", "Pending: waiting for a GPU")),
        (
            campaign(
                "WaitingForModelCache",
                "model cache 'default' is Populating",
                [{"type": "ModelCacheReady", "status": "False", "reason": "ModelCacheNotReady"}],
            ),
            ("Progressing", "WaitingForModelCache: model cache 'default' is Populating"),
        ),
        (
            campaign(
                "WaitingForModelCache",
                "model cache 'default' is Failed: checksum",
                [{"type": "ModelCacheReady", "status": "False", "reason": "ModelCacheFailed"}],
            ),
            ("Degraded", "model cache 'default' is Failed: checksum"),
        ),
        (campaign("Designing", "1200/10000 designs"), ("Progressing", "Designing: 1200/10000 designs")),
        (campaign("Filtering", "ranking 10000 designs"), ("Progressing", "Filtering: ranking 10000 designs")),
        (campaign("Succeeded", "100 designs passed the filters"), ("Healthy", "100 designs passed the filters")),
        (campaign("Succeeded"), ("Healthy", "campaign complete")),
        (campaign("Failed", "GPU out of memory"), ("Degraded", "GPU out of memory")),
        (
            campaign(
                "Failed",
                conditions=[{"type": "Failed", "status": "True", "reason": "X", "message": "from the condition"}],
            ),
            ("Degraded", "from the condition"),
        ),
        (
            campaign("Succeeded", "done", generation=3, observed=2),
            ("Progressing", "waiting for the operator to observe generation 3 (status is for generation 2)"),
        ),
    ],
    ids=lambda v: v["status"]["phase"] if isinstance(v, dict) and "status" in v else None,
)
def test_boltzgen_campaign_derived_cases(obj, expected):
    assert health(obj) == expected


# ------------------------------------------------------------------------------------------------ BoltzScreen


def screen(phase: str | None, message: str | None = None, conditions=()) -> dict:
    """A BoltzScreen status in the operator's conventions (the capture runs hold none yet)."""
    obj = campaign(phase, message, conditions)
    obj["kind"] = "BoltzScreen"
    return obj


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (screen(None), ("Progressing", "waiting for the operator: no status yet")),
        (
            screen("Preparing", "prediction egfr is fetching the same MSA; this one starts when it is stored"),
            ("Progressing", "Preparing: prediction egfr is fetching the same MSA; this one starts when it is stored"),
        ),
        (screen("Screening", "2/40 shards done"), ("Progressing", "Screening: 2/40 shards done")),
        (
            screen("Ranking", "all 40 shards succeeded; ranking"),
            ("Progressing", "Ranking: all 40 shards succeeded; ranking"),
        ),
        (screen("Succeeded", "1990 ligands screened, 10 failed"), ("Healthy", "1990 ligands screened, 10 failed")),
        (screen("Failed", "shards: 9 of 40 shards failed"), ("Degraded", "shards: 9 of 40 shards failed")),
        (
            screen(
                "WaitingForModelCache",
                "model cache 'default' is Failed: checksum",
                [{"type": "ModelCacheReady", "status": "False", "reason": "ModelCacheFailed"}],
            ),
            ("Degraded", "model cache 'default' is Failed: checksum"),
        ),
    ],
    ids=lambda v: v["status"]["phase"] if isinstance(v, dict) and "status" in v else None,
)
def test_boltz_screen_cases(obj, expected):
    assert health(obj) == expected


# ------------------------------------------------------------------------------------------------ the sandbox


SCRIPTS = sorted(HEALTH_DIR.glob("*/*/health.lua"))


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.parent.name)
def test_scripts_use_no_library_argo_cd_leaves_closed(path):
    # Argo CD opens only base, table, package and a safe os for argocd-cm scripts. The sandboxed runs above
    # cover the branches they reach; this covers the text of every branch.
    code = "\n".join(line.split("--", 1)[0] for line in path.read_text().splitlines())
    assert not re.search(r"\b(string|math|io|debug|coroutine|utf8)\s*\.", code)
    assert not re.search(r"[\w\)\]\"']\s*:\s*[A-Za-z_]\w*\s*\(", code), "no string methods: strings have none there"
    assert "obj" in code and re.search(r"^return hs$", code, re.M)


def test_the_sandbox_is_argo_cds():
    vm = lua_health.ArgoCDLua()
    for script in (
        'return {status = string.upper("healthy")}',
        'return {status = ("x"):upper()}',
        "return {status = tostring(math.floor(1.5))}",
        "return {status = io.read()}",
    ):
        with pytest.raises(lua_health.LuaHealthError, match="nil value|attempt to index"):
            vm.health(script, {})
    assert vm.health('return {status = os.date("%Y") and "Healthy", message = table.concat({"a", "b"}, ",")}', {}) == {
        "status": "Healthy",
        "message": "a,b",
    }
    assert vm.health('return {status = "Fine"}', {}) == {
        "status": "Unknown",
        "message": lua_health.INVALID_HEALTH_STATUS,
    }
    with pytest.raises(lua_health.LuaHealthError, match="expect table output from Lua script, not string"):
        vm.health('return "Healthy"', {})
    with pytest.raises(lua_health.LuaHealthError, match="context deadline exceeded"):
        vm.health("while true do end", {})
    # JSON null is nil, arrays are 1-based, numbers are numbers.
    assert vm.health(
        'return {status = "Healthy", message = tostring(obj.a) .. obj.b[1] .. (obj.c + 1)}',
        {"a": None, "b": ["x"], "c": 1},
    ) == {"status": "Healthy", "message": "nilx2"}
    # The string metatable is back after a sandboxed run (the harness itself stays usable).
    assert vm.health('return {status = ("healthy"):gsub("^h", "H")}', {}, open_libs=True)["status"] == "Healthy"


def test_the_cli_prints_the_health_of_a_kubectl_list(tmp_path, capsys):
    items = [fixture("prediction-succeeded"), fixture("modelcache-failed")]
    path = tmp_path / "list.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    assert lua_health.main([str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[1] for line in lines] == ["Healthy", "Degraded"]
