"""The fake `boltzgen` executable (see fake_boltzgen.py) and how to point the worker at it."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

FAKE_BOLTZGEN = Path(__file__).with_name("fake_boltzgen.py")


def fake_boltzgen_command() -> str:
    """A value for $BOLTZGEN_EXECUTABLE: this interpreter running fake_boltzgen.py."""
    return shlex.join([sys.executable, str(FAKE_BOLTZGEN)])
