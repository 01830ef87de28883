"""A real headless Chromium (Debian's package, hack/browser/chromium.sh) driven over the DevTools protocol.

The browser runs in a network namespace of its own (`unshare -n`: no interface but a downed loopback), so a page
that tries to fetch anything fails to, and talks to the test over a pipe (`--remote-debugging-pipe`: fds 3 and 4,
NUL-terminated JSON), not a port. Every console error, uncaught exception, log error and non-local request is
recorded, so a test can assert there were none.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import struct
import subprocess
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "hack" / "browser" / "chromium.sh"
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "devtools:")


def find_chromium() -> tuple[str | None, str]:
    """(path, "") of chromium, installing it (pinned) when missing; (None, why) when it cannot be had."""
    found = shutil.which("chromium")
    if found:
        return found, ""
    proc = subprocess.run([str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        return None, f"{INSTALL_SCRIPT.name} exited {proc.returncode}: {proc.stderr.strip()[-400:]}"
    return proc.stdout.strip().splitlines()[-1], ""


def network_isolation_works() -> bool:
    """Whether `unshare -n` works here (root, or user namespaces allowed)."""
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass
class PageLog:
    """What a page did that a test may forbid."""

    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)
    remote_requests: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return [*self.console_errors, *self.exceptions, *self.log_errors, *self.remote_requests]


class Chromium:
    """One headless browser with one page. Use as a context manager; `open(url)` then `evaluate`/`screenshot`."""

    def __init__(self, executable: str, profile: Path, width: int = 1280, height: int = 1600):
        self.executable, self.profile, self.size = executable, profile, (width, height)
        self.log = PageLog()
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self._cond = threading.Condition()
        self._session: str | None = None

    def __enter__(self) -> Chromium:
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        args = [
            "--headless=new", "--no-sandbox", "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-dev-shm-usage",
            "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist",
            f"--window-size={self.size[0]},{self.size[1]}", "about:blank",
        ]  # fmt: skip
        # bash, not sh: dash cannot redirect from descriptors above 9.
        script = f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}'
        self.process = subprocess.Popen(
            ["unshare", "-n", "bash", "-c", script, self.executable, *args],
            pass_fds=(to_browser_r, from_browser_w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._out = os.fdopen(to_browser_w, "wb", buffering=0)
        self._in = os.fdopen(from_browser_r, "rb", buffering=0)
        threading.Thread(target=self._read, daemon=True).start()
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self._session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.call(f"{domain}.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.size[0], "height": self.size[1], "deviceScaleFactor": 1, "mobile": False},
        )
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.call("Browser.close", session=False, timeout=10)
        except Exception:  # noqa: BLE001 (closing anyway)
            pass
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    # ------------------------------------------------------------------------------------------------ protocol

    def call(self, method: str, params: dict | None = None, session: bool = True, timeout: float = 60) -> dict:
        """Send one DevTools command and wait for its reply; raises RuntimeError on a protocol error."""
        with self._cond:
            self._next_id += 1
            message_id = self._next_id
        message: dict = {"id": message_id, "method": method, "params": params or {}}
        if session and self._session:
            message["sessionId"] = self._session
        self._out.write(json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while message_id not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise RuntimeError(f"no reply to {method} (browser exited: {self.process.poll()})")
                self._cond.wait(min(left, 0.5))
            reply = self._replies.pop(message_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def _read(self) -> None:
        buffer = b""
        while True:
            chunk = self._in.read(1 << 16)
            if not chunk:
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    with self._cond:
                        self._replies[message["id"]] = message
                        self._cond.notify_all()
                else:
                    self._event(message.get("method", ""), message.get("params", {}))

    def _event(self, method: str, params: dict) -> None:
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.log.console_errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.log.exceptions.append(details.get("exception", {}).get("description") or details.get("text", ""))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            self.log.log_errors.append(params["entry"].get("text", ""))
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if not url.startswith(LOCAL_SCHEMES):
                self.log.remote_requests.append(url)

    # ------------------------------------------------------------------------------------------------ page

    def open(self, url: str, timeout: float = 60) -> None:
        """Navigate and wait until the document has loaded."""
        self.call("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete'", timeout)

    def evaluate(self, expression: str):
        """The JSON value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> None:
        """Poll a JavaScript condition until it is truthy; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"!!({expression})"):
            if time.monotonic() > deadline:
                raise AssertionError(f"not true after {timeout} s: {expression}; page log: {self.log.problems()}")
            time.sleep(0.1)

    def screenshot(self, selector: str) -> Image:
        """The pixels of the element `selector` (scrolled into view) as an Image."""
        rect = self.evaluate(
            f"(function () {{ var e = document.querySelector({json.dumps(selector)}); e.scrollIntoView(); "
            "var r = e.getBoundingClientRect(); return {x: r.x + window.scrollX, y: r.y + window.scrollY, "
            "width: r.width, height: r.height}; })()"
        )
        shot = self.call(
            "Page.captureScreenshot",
            {"format": "png", "clip": {**rect, "scale": 1}, "captureBeyondViewport": True},
        )
        return decode_png(base64.b64decode(shot["data"]))


# ---------------------------------------------------------------------------------------------- PNG


@dataclass
class Image:
    width: int
    height: int
    pixels: list[tuple[int, int, int]]  # RGB, row by row

    def fraction(self, predicate) -> float:
        return sum(1 for p in self.pixels if predicate(p)) / max(1, len(self.pixels))


def decode_png(data: bytes) -> Image:
    """An 8-bit RGB or RGBA PNG (what Chromium writes) as RGB pixels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    height = depth = color = 0
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", chunk[:10])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    assert depth == 8 and color in (2, 6), f"PNG depth {depth} colour type {color} not handled"
    channels = 4 if color == 6 else 3
    raw, stride = zlib.decompress(idat), width * channels
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        kind, row = line[0], bytearray(line[1:])
        for i in range(stride):
            a = row[i - channels] if i >= channels else 0
            b = previous[i]
            c = previous[i - channels] if i >= channels else 0
            if kind == 1:
                row[i] = (row[i] + a) & 0xFF
            elif kind == 2:
                row[i] = (row[i] + b) & 0xFF
            elif kind == 3:
                row[i] = (row[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(row)
        previous = row
    pixels = [(r[i], r[i + 1], r[i + 2]) for r in rows for i in range(0, stride, channels)]
    return Image(width, height, pixels)
