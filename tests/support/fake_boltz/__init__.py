"""The fake `boltz` executable (see fake_boltz.py) and how to point the worker at it."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

FAKE_BOLTZ = Path(__file__).with_name("fake_boltz.py")


def fake_boltz_command() -> str:
    """A value for $BOLTZ_EXECUTABLE: this interpreter running fake_boltz.py."""
    return shlex.join([sys.executable, str(FAKE_BOLTZ)])
