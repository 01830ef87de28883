"""Fixtures for the chart's cluster tests (helpers in support/chart.py)."""

from __future__ import annotations

import pytest

from support.chart import Helm, Namespaces
from support.operator_fixtures import install_crds_and_rbac


@pytest.fixture(scope="session")
def chart_crds(cluster) -> None:
    """The CRDs at the repository's version (the chart's crds/ holds the same files)."""
    install_crds_and_rbac(cluster)


@pytest.fixture
def helm(cluster, chart_crds, tmp_path):
    client = Helm(cluster, tmp_path)
    yield client
    client.close()


@pytest.fixture
def namespaces(cluster):
    created = Namespaces(cluster)
    yield created
    created.close()
