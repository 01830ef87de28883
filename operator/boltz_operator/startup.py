"""The operator's start: kopf's settings and what every pass shares (kopf's `memo`): configuration, the API client,
metrics, the per-object bookkeeping, the MSA gate and the webhook notifier."""

from __future__ import annotations

import kopf
from kubernetes import client
from kubernetes import config as kube_config

from boltz_operator.config import OperatorConfig
from boltz_operator.kube import Kube
from boltz_operator.metrics import Metrics
from boltz_operator.notify.notifier import Notifier
from boltz_operator.reconcile.bookkeeping import Bookkeeping
from boltz_operator.reconcile.msa_gate import MsaGate
from boltz_operator.reconcile.registry import BY_KIND


def configure_operator(settings: kopf.OperatorSettings, memo: kopf.Memo) -> None:
    """Fill `memo` (config, kube, metrics, book, msa_gate, notifier) and set kopf's settings; serves metrics when a port is set."""
    settings.posting.enabled = False  # our Events are few and deliberate (Kube.post_event)
    settings.watching.server_timeout = 300
    # kopf types it str; None turns finalizers off (kopf's documented setting), which the operator relies on.
    settings.persistence.finalizer = None  # type: ignore[assignment]
    # No cluster-wide discovery: kopf would list/watch CRDs and namespaces, which the chart's role does not grant.
    settings.scanning.disabled = True
    memo.config = OperatorConfig.from_env()
    settings.execution.max_workers = memo.config.worker_threads
    memo.kube = Kube(api_client(memo.config.worker_threads))
    memo.metrics = Metrics()
    memo.book = Bookkeeping()
    memo.msa_gate = MsaGate(limit=memo.config.msa_server_max_concurrent)
    # Its own thread and event loop: a slow or dead receiver never holds up a pass or kopf's watches.
    memo.notifier = Notifier(memo.kube, memo.config, memo.metrics, memo.book, lambda kind: BY_KIND[kind].kind.plural)
    memo.notifier.start()
    if memo.config.metrics_port:
        memo.metrics.serve(memo.config.metrics_port)


def api_client(connections: int) -> client.ApiClient:
    """In-cluster credentials when there are (a pod's ServiceAccount token), else the kubeconfig; a connection pool
    as large as the handler thread pool."""
    try:
        kube_config.load_incluster_config()
    except kube_config.ConfigException:
        kube_config.load_kube_config()
    api_config = client.Configuration.get_default_copy()
    api_config.connection_pool_maxsize = connections
    return client.ApiClient(api_config)
