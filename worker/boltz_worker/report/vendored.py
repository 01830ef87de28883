"""The vendored scripts (vendor/README.md says where they come from), checked against their recorded sha256."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

VENDOR_DIR = Path(__file__).resolve().parent / "vendor"
THREE_DMOL = "3Dmol-min.js"
THREE_DMOL_VERSION = "2.5.5"
THREE_DMOL_SHA256 = "f7cc78921ae72e7623e89cdd111434f58c2efddd2ffda1cd212644b406fb8016"


class VendoredFileError(RuntimeError):
    """A vendored script is missing or differs from the recorded one (a broken install or refresh)."""


@cache
def three_dmol_js() -> str:
    """3Dmol.js as text, after checking its sha256. Raises VendoredFileError."""
    path = VENDOR_DIR / THREE_DMOL
    try:
        data = path.read_bytes()
    except OSError as e:
        raise VendoredFileError(f"the vendored {THREE_DMOL} is missing: {e}") from e
    digest = hashlib.sha256(data).hexdigest()
    if digest != THREE_DMOL_SHA256:
        raise VendoredFileError(f"{path} has sha256 {digest}, not the recorded {THREE_DMOL_SHA256}")
    return data.decode("utf-8")
