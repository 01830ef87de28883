"""argocd/lua_health.py (the Argo CD Lua sandbox the health checks run in), loaded once for the tests that judge
objects with it. argocd/ is not a package: its scripts are meant to run on their own."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _load_lua_health():
    spec = importlib.util.spec_from_file_location("boltz_argocd_lua_health", REPO / "argocd" / "lua_health.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lua_health = _load_lua_health()
