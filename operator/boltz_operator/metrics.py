"""Prometheus metrics. Labels are namespace, kind and small enums (phase, reason): never an object's name, so
the series count stays bounded however many predictions run."""

from __future__ import annotations

import threading
from collections import Counter as Tally
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily

# Run times of Boltz jobs range from a minute to many hours.
DURATION_BUCKETS = (30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400)


class PhaseTracker:
    """The phase of every resource the operator has seen, for the `boltz_resources` gauge (computed at scrape)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._phases: dict[tuple[str, str, str], str] = {}  # (kind, namespace, name) -> phase

    def set(self, kind: str, namespace: str, name: str, phase: str | None) -> None:
        with self._lock:
            self._phases[(kind, namespace, name)] = phase or "Pending"

    def forget(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self._phases.pop((kind, namespace, name), None)

    def collect(self):
        with self._lock:
            counts = Tally((kind, namespace, phase) for (kind, namespace, _), phase in self._phases.items())
        gauge = GaugeMetricFamily(
            "boltz_resources", "Resources by kind, namespace and phase.", labels=["kind", "namespace", "phase"]
        )
        for (kind, namespace, phase), count in sorted(counts.items()):
            gauge.add_metric([kind, namespace, phase], count)
        yield gauge


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.phases = PhaseTracker()
        self.registry.register(self.phases)
        labels = ["kind", "namespace"]
        self.run_seconds = Histogram(
            "boltz_run_duration_seconds",
            "Job start to finish, for finished runs.",
            labels + ["outcome"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.queue_wait_seconds = Histogram(
            "boltz_queue_wait_seconds",
            "Resource created to Job started.",
            labels,
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.jobs_created = Counter(
            "boltz_jobs_created_total", "Jobs the operator created.", labels, registry=self.registry
        )
        self.retries = Counter(
            "boltz_retries_total",
            "Failed worker pods the Job retried, by error class.",
            labels + ["reason"],
            registry=self.registry,
        )
        self.reconcile_errors = Counter(
            "boltz_reconcile_errors_total", "Reconcile passes that raised.", labels, registry=self.registry
        )
        self.notifications = Counter(
            "boltz_notifications_total",
            "Webhook notifications by outcome: delivered, failed (attempts spent or a final answer), refused (host "
            "policy or signing key), attempt_failed (each failed attempt, retried or not).",
            labels + ["outcome"],
            registry=self.registry,
        )

    def serve(self, port: int) -> None:
        start_http_server(port, registry=self.registry)

    def finished(
        self,
        kind: str,
        namespace: str,
        outcome: str,
        created: str | None,
        started: datetime | str | None,
        completed: datetime | str | None,
    ) -> None:
        """Observe a run that just reached a terminal phase (called once, on the transition)."""
        created_at, started_at, completed_at = (_as_datetime(t) for t in (created, started, completed))
        if started_at and completed_at:
            self.run_seconds.labels(kind, namespace, outcome).observe((completed_at - started_at).total_seconds())
        if created_at and started_at:
            self.queue_wait_seconds.labels(kind, namespace).observe(max(0.0, (started_at - created_at).total_seconds()))


def _as_datetime(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
