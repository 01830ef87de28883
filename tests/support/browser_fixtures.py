"""Chromium for the report tests: Debian's package, installed pinned by hack/browser/chromium.sh when missing.

Skipped (saying why) where it cannot be had or the browser cannot be cut off the network; on CI that fails instead.
"""

from __future__ import annotations

import os

import pytest

from support.browser import Chromium, find_chromium, network_isolation_works


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (on CI the report tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path, why = find_chromium()
    if path is None:
        _unavailable(f"no chromium: {why}")
    if not network_isolation_works():
        _unavailable("`unshare -n` does not work here: the browser could not be cut off the network")
    return path


@pytest.fixture
def browser(chromium_path, tmp_path):
    """A fresh headless Chromium with no network, its profile in tmp_path."""
    with Chromium(chromium_path, tmp_path / "profile") as chromium:
        yield chromium
