"""Reading boltz's .npz arrays (pLDDT, PAE) without numpy.

The worker stays light (numpy is boltz's, pinned by it, and absent from the operator-side venv where the report
tests run), and the arrays the report needs are small and simple: little-endian floats, C order, one array per
archive. An .npz is a zip of .npy files; an .npy is a magic string, a header (a Python dict literal) and raw data.
"""

from __future__ import annotations

import ast
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

_MAGIC = b"\x93NUMPY"
_FORMATS = {"<f2": "e", "<f4": "f", "<f8": "d", "|u1": "B", "<i4": "i", "<i8": "q"}


class ArrayError(ValueError):
    """The file is not an .npz/.npy this reader understands (another dtype, Fortran order, corrupt)."""


@dataclass(frozen=True)
class Array:
    """A numeric array: `shape` and the values flattened in C order (row-major)."""

    shape: tuple[int, ...]
    values: list[float]

    def rows(self) -> list[list[float]]:
        """A 2-D array as a list of rows. Raises ArrayError when the array is not 2-D."""
        if len(self.shape) != 2:
            raise ArrayError(f"expected a 2-D array, got shape {self.shape}")
        n, m = self.shape
        return [self.values[i * m : (i + 1) * m] for i in range(n)]


def read_npz(path: Path, key: str) -> Array:
    """The array `key` (e.g. "pae", "plddt") of the .npz at `path`. Raises ArrayError, OSError."""
    try:
        with zipfile.ZipFile(path) as archive:
            data = archive.read(f"{key}.npy")
    except KeyError as e:
        raise ArrayError(f"{path.name} has no array {key!r}") from e
    except zipfile.BadZipFile as e:
        raise ArrayError(f"{path.name} is not an .npz: {e}") from e
    return parse_npy(data)


def parse_npy(data: bytes) -> Array:
    """One .npy file's bytes (format versions 1 to 3) as an Array. Raises ArrayError."""
    if not data.startswith(_MAGIC) or len(data) < 10:
        raise ArrayError("not an .npy array")
    major = data[6]
    if major == 1:
        (header_len,), start = struct.unpack("<H", data[8:10]), 10
    elif major in (2, 3):
        (header_len,), start = struct.unpack("<I", data[8:12]), 12
    else:
        raise ArrayError(f".npy format version {major} is not supported")
    try:
        header = ast.literal_eval(data[start : start + header_len].decode("latin-1"))
        descr, fortran, shape = header["descr"], header["fortran_order"], tuple(header["shape"])
    except (ValueError, SyntaxError, KeyError, TypeError) as e:
        raise ArrayError(f"unreadable .npy header: {e}") from e
    if fortran:
        raise ArrayError("Fortran-ordered arrays are not supported")
    code = _FORMATS.get(descr)
    if code is None:
        raise ArrayError(f"dtype {descr} is not supported")
    count = 1
    for n in shape:
        count *= n
    body = data[start + header_len :]
    size = struct.calcsize(code) * count
    if len(body) < size:
        raise ArrayError(f"truncated array: {len(body)} bytes for {count} values of {descr}")
    return Array(shape=shape, values=list(struct.unpack(f"<{count}{code}", body[:size])))
