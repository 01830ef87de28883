"""The Helm chart, rendered with the pinned helm (no cluster): lint, objects, RBAC, values -> operator config."""

from __future__ import annotations

import json

import pytest
import yaml
from chart_helpers import CHART, REPO, container_env, helm, one, render, render_error, render_notes

from boltz_operator.config import OperatorConfig

FULL_VALUES = {
    "image": {"repository": "registry.example/operator", "tag": "1.2.3", "pullPolicy": "Always"},
    "imagePullSecrets": [{"name": "pull"}],
    "workerImages": {
        "boltz": {"repository": "registry.example/worker-boltz", "digest": "sha256:" + "a" * 64},
        "boltzgen": {"repository": "registry.example/worker-boltzgen", "tag": "9"},
        "pullPolicy": "Never",
    },
    "watchNamespaces": ["team-a", "team-b"],
    "workerServiceAccount": {"name": "boltz-worker", "create": True, "annotations": {"iam.example/role": "r"}},
    "gpu": {
        "resourceName": "amd.com/gpu",
        "defaultCount": 2,
        "nodeSelector": {"gpu": "h100"},
        "tolerations": [
            {"key": "gpu", "operator": "Equal", "value": "yes", "effect": "NoExecute", "tolerationSeconds": 60}
        ],
        "runtimeClassName": "nvidia",
    },
    "workers": {"cpu": "4", "memory": "32Gi", "populateCpu": "1", "populateMemory": "2Gi", "jobTTLSeconds": 3600},
    "defaultResults": {
        "s3": {
            "uri": "s3://results/boltz",
            "endpoint": "https://s3.example",
            "region": "eu-1",
            "credentialsSecret": "results-s3",
        }
    },
    "kueue": {"defaultQueueName": "gpu-queue"},
    "defaultModelCache": {"enabled": True, "namespaces": ["team-a"]},
    "metrics": {"port": 9191, "serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
    "podAnnotations": {"a": "b"},
    "podLabels": {"team": "x"},
    "nodeSelector": {"pool": "system"},
    "tolerations": [{"key": "system", "operator": "Exists"}],
    "priorityClassName": "system-cluster-critical",
    "verbose": True,
}


def kinds(docs):
    return sorted((d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs)


def test_lint_is_clean_with_defaults_and_with_every_option_set(tmp_path):
    values = tmp_path / "full.yaml"
    values.write_text(json.dumps(FULL_VALUES))
    for args in ([], ["-f", str(values)]):
        result = helm("lint", "--strict", str(CHART), *args)
        assert "0 chart(s) failed" in result.stdout
        assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


def test_defaults_render_the_operator_its_identity_and_the_metrics_service():
    assert kinds(render()) == [
        ("ClusterRole", None, "boltz-operator-boltz-system"),
        ("ClusterRoleBinding", None, "boltz-operator-boltz-system"),
        ("Deployment", "boltz-system", "boltz-operator"),
        ("Service", "boltz-system", "boltz-operator-metrics"),
        ("ServiceAccount", "boltz-system", "boltz-operator"),
    ]


def test_names_follow_the_release_and_cluster_scoped_ones_carry_its_namespace():
    docs = render(release="gpu", namespace="ops")
    assert one(docs, "ServiceAccount")["metadata"]["name"] == "gpu-boltz-operator"
    binding = one(docs, "ClusterRoleBinding")
    assert binding["metadata"]["name"] == "gpu-boltz-operator-ops"
    assert binding["roleRef"]["name"] == one(docs, "ClusterRole")["metadata"]["name"] == "gpu-boltz-operator-ops"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "gpu-boltz-operator", "namespace": "ops"}]
    assert one(render({"fullnameOverride": "bo"}), "Deployment")["metadata"]["name"] == "bo"


# The reviewed least-privilege rules: a change here must be deliberate (and proven needed by a cluster test).
EXPECTED_RULES = {
    ("boltz-operator.io", "boltzpredictions"): ["get", "list", "watch"],
    ("boltz-operator.io", "boltzmodelcaches"): ["get", "list", "watch"],
    ("boltz-operator.io", "boltzpredictions/status"): ["patch"],
    ("boltz-operator.io", "boltzmodelcaches/status"): ["patch"],
    ("boltz-operator.io", "boltzpredictions/finalizers"): ["update"],
    ("boltz-operator.io", "boltzmodelcaches/finalizers"): ["update"],
    ("boltz-operator.io", "boltzgencampaigns"): ["get", "list", "watch"],
    ("boltz-operator.io", "boltzgencampaigns/status"): ["patch"],
    ("boltz-operator.io", "boltzgencampaigns/finalizers"): ["update"],
    ("boltz-operator.io", "boltzscreens"): ["get", "list", "watch"],
    ("boltz-operator.io", "boltzscreens/status"): ["patch"],
    ("boltz-operator.io", "boltzscreens/finalizers"): ["update"],
    ("batch", "jobs"): ["get", "list", "watch", "create"],
    ("", "pods"): ["list"],
    ("", "configmaps"): ["create"],
    ("", "persistentvolumeclaims"): ["get", "create"],
    ("", "events"): ["create"],
}


def test_rbac_has_exactly_the_reviewed_verbs():
    rules = {}
    for rule in one(render(), "ClusterRole")["rules"]:
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert (group, resource) not in rules, f"{group}/{resource} listed twice"
                rules[(group, resource)] = rule["verbs"]
    assert rules == EXPECTED_RULES


def test_signing_secrets_are_readable_by_name_only_and_reach_the_config():
    values = {
        "notifications": {
            "allowedHosts": ["hooks.example.com", "*.webhook.example"],
            "allowPrivateAddresses": True,
            "signingSecretNames": ["webhook-signing", "team-key"],
            "maxAttempts": 3,
            "backoffSeconds": 0.5,
            "backoffMaxSeconds": 20,
        }
    }
    docs = render(values)
    secret_rules = [r for r in one(docs, "ClusterRole")["rules"] if "secrets" in r["resources"]]
    assert secret_rules == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["get"],
            "resourceNames": ["webhook-signing", "team-key"],
        }
    ]
    config = OperatorConfig.from_env(container_env(docs))
    assert config.notify_allowed_hosts == ["hooks.example.com", "*.webhook.example"]
    assert config.notify_allow_private_addresses is True
    assert config.notify_signing_secrets == ["webhook-signing", "team-key"]
    assert (config.notify_max_attempts, config.notify_backoff_seconds, config.notify_backoff_max_seconds) == (
        3,
        0.5,
        20,
    )


def test_watch_namespaces_bind_the_role_in_each_and_nowhere_else():
    docs = render({"watchNamespaces": ["team-a", "team-b"]})
    assert not [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    bindings = [d for d in docs if d["kind"] == "RoleBinding"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for binding in bindings:
        assert binding["metadata"]["name"] == "boltz-operator-boltz-system"
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "boltz-operator-boltz-system",
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "boltz-operator", "namespace": "boltz-system"}
        ]
    assert container_env(docs)["BOLTZ_OPERATOR_NAMESPACES"] == "team-a,team-b"


def test_the_deployment_is_one_recreated_restricted_replica_probed_on_kopfs_healthz():
    deployment = one(render(), "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "boltz-operator"
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    [container] = pod["containers"]
    assert container["image"] == "ghcr.io/boltz-operator/operator:0.1.0"
    assert container["args"] == ["run", "--liveness=http://0.0.0.0:8080/healthz"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["resources"]["limits"]["memory"] == "512Mi"
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()


def test_the_chart_defaults_are_the_operators_defaults():
    """Values left alone configure the operator exactly as its own defaults do (no drift between the two)."""
    env = container_env(render())
    assert OperatorConfig.from_env(env) == OperatorConfig()
    assert "BOLTZ_OPERATOR_DEFAULT_RESULTS" not in env and "BOLTZ_OPERATOR_NAMESPACES" not in env


def test_every_value_reaches_the_operator_config():
    env = container_env(render(FULL_VALUES))
    config = OperatorConfig.from_env(env)
    assert config.worker_image == "registry.example/worker-boltz@sha256:" + "a" * 64
    assert env["BOLTZ_OPERATOR_BOLTZGEN_WORKER_IMAGE"] == "registry.example/worker-boltzgen:9"
    assert config.image_pull_policy == "Never"
    assert config.worker_service_account == "boltz-worker"
    assert config.gpu_resource_name == "amd.com/gpu" and config.default_gpus == 2
    assert config.node_selector == {"gpu": "h100"}
    assert [t.model_dump(exclude_none=True) for t in config.gpu_tolerations] == [
        {"key": "gpu", "operator": "Equal", "value": "yes", "effect": "NoExecute", "toleration_seconds": 60}
    ]
    assert config.runtime_class_name == "nvidia"
    assert (config.default_cpu, config.default_memory, config.populate_cpu, config.populate_memory) == (
        "4",
        "32Gi",
        "1",
        "2Gi",
    )
    assert config.job_ttl_seconds == 3600
    assert config.default_results.model_dump(exclude_none=True) == {
        "s3_uri": "s3://results/boltz",
        "s3_endpoint": "https://s3.example",
        "s3_region": "eu-1",
        "s3_credentials_secret": "results-s3",
    }
    assert config.default_queue_name == "gpu-queue"
    assert config.namespaces == ["team-a", "team-b"]
    assert env["BOLTZ_OPERATOR_METRICS_PORT"] == "9191"

    pod = one(render(FULL_VALUES), "Deployment")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "registry.example/operator:1.2.3" and container["imagePullPolicy"] == "Always"
    assert container["args"][-1] == "--verbose"
    assert pod["imagePullSecrets"] == [{"name": "pull"}] and pod["nodeSelector"] == {"pool": "system"}
    assert pod["priorityClassName"] == "system-cluster-critical"


def test_a_pvc_default_results_store():
    env = container_env(render({"defaultResults": {"pvc": {"claimName": "results", "subPath": "boltz"}}}))
    config = OperatorConfig.from_env(env)
    assert config.default_results.model_dump(exclude_none=True) == {
        "pvc_claim_name": "results",
        "pvc_sub_path": "boltz",
    }


def test_metrics_service_targets_the_named_port_and_can_be_turned_off():
    docs = render()
    service = one(docs, "Service")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}]
    assert service["spec"]["selector"] == one(docs, "Deployment")["spec"]["selector"]["matchLabels"]

    off = render({"metrics": {"enabled": False}})
    assert not [d for d in off if d["kind"] in ("Service", "ServiceMonitor")]
    assert container_env(off)["BOLTZ_OPERATOR_METRICS_PORT"] == "0"
    [container] = one(off, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [p["name"] for p in container["ports"]] == ["health"]


def test_service_monitor_is_off_by_default_and_scrapes_the_metrics_port_when_on():
    assert not [d for d in render() if d["kind"] == "ServiceMonitor"]
    monitor = one(
        render({"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}}), "ServiceMonitor"
    )
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["boltz-system"]}


def test_default_model_cache_and_worker_service_accounts_per_namespace():
    docs = render(FULL_VALUES)
    [cache] = [d for d in docs if d["kind"] == "BoltzModelCache"]
    assert (cache["metadata"]["namespace"], cache["metadata"]["name"]) == ("team-a", "default")
    assert cache["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert cache["spec"] == {"source": {"huggingFace": {}}, "storage": {"size": "20Gi"}}
    workers = [d for d in docs if d["kind"] == "ServiceAccount" and d["metadata"]["name"] == "boltz-worker"]
    assert sorted(w["metadata"]["namespace"] for w in workers) == ["team-a", "team-b"]
    assert all(w["automountServiceAccountToken"] is False for w in workers)
    assert workers[0]["metadata"]["annotations"] == {"iam.example/role": "r"}

    uninstalled_with = render({"defaultModelCache": {"enabled": True, "namespaces": ["x"], "keepOnUninstall": False}})
    assert "annotations" not in one(uninstalled_with, "BoltzModelCache")["metadata"]
    assert not [d for d in render() if d["kind"] == "BoltzModelCache"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicas": 2}, "additional properties 'replicas' not allowed"),
        ({"gpu": {"count": 2}}, "additional properties 'count' not allowed"),
        ({"gpu": {"defaultCount": "2"}}, "want integer"),
        ({"defaultResults": {"s3": {"uri": "https://bucket"}}}, "does not match pattern"),
        ({"watchNamespaces": ["Team_A"]}, "does not match pattern"),
        ({"workerImages": {"pullPolicy": "Sometimes"}}, "/workerImages/pullPolicy': value must be one of"),
        ({"metrics": {"port": 80}}, "minimum"),
        (
            {"gpu": {"tolerations": [{"key": "k", "operator": "Has"}]}},
            "/gpu/tolerations/0/operator': value must be one of",
        ),
    ],
)
def test_the_schema_rejects_unknown_keys_and_bad_values(values, message):
    assert message in render_error(values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"defaultResults": {"s3": {"uri": "s3://results/x"}, "pvc": {"claimName": "r"}}}, "not both"),
        ({"workerServiceAccount": {"create": True}}, "needs workerServiceAccount.name"),
        (
            {"workerServiceAccount": {"create": True, "name": "w"}},
            "needs workerServiceAccount.namespaces or watchNamespaces",
        ),
        ({"defaultModelCache": {"enabled": True}}, "needs defaultModelCache.namespaces"),
    ],
)
def test_contradictory_values_fail_with_a_message(values, message):
    assert message in render_error(values)


def test_notes_tell_the_next_commands():
    notes = render_notes(
        {
            "watchNamespaces": ["team-a"],
            "defaultResults": {"s3": {"uri": "s3://results/boltz", "credentialsSecret": "results-s3"}},
        }
    )
    assert "watches the namespaces team-a" in notes
    assert "kubectl -n team-a create secret generic results-s3" in notes
    assert "kubectl -n team-a apply -f examples/modelcache.yaml" in notes
    assert "kubectl -n team-a get boltzmodelcaches,boltzpredictions" in notes
    plain = render_notes()
    assert "watches all namespaces" in plain and "each BoltzPrediction must set spec.results" in plain
    pvc = render_notes({"defaultResults": {"pvc": {"claimName": "results"}}})
    assert "Results go to the PVC results" in pvc and "create secret" not in pvc


def test_the_argocd_example_application_passes_values_the_chart_accepts():
    application = yaml.safe_load((REPO / "examples" / "argocd" / "application-chart.yaml").read_text())
    values = application["spec"]["source"]["helm"]["valuesObject"]
    env = container_env(render(values))
    assert OperatorConfig.from_env(env).default_results.s3_uri == values["defaultResults"]["s3"]["uri"]
