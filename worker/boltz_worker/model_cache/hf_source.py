"""Hugging Face (or a mirror serving the same /<repo>/resolve/<rev>/<file> paths) as a ranged source.

For LFS files Hugging Face answers a resolve URL with a redirect to a CDN and puts the file's size and sha256 on
that FIRST response (X-Linked-Size, X-Linked-Etag); the CDN's own ETag is not the sha256. So `describe` asks with
HEAD without following absolute redirects, and the GET then goes straight to the CDN location.
"""

from __future__ import annotations

import http.client
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from email.message import Message

from boltz_contract import ErrorClass, WorkerError
from boltz_worker.fileutil import CHUNK
from boltz_worker.model_cache.downloads import RangeStream, RemoteFile, TransientError
from boltz_worker.model_cache.model_catalog import Bundle

USER_AGENT = "boltz-worker/0.1"
TIMEOUT_SECONDS = 60
MAX_RELATIVE_REDIRECTS = 5
TRANSIENT_HTTP_CODES = frozenset({408, 425, 429, 500, 502, 503, 504})
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-\d+/(\d+|\*)$")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        return None  # urllib then raises HTTPError carrying the redirect's headers


_no_redirect_opener = urllib.request.build_opener(_NoRedirects)


def sha256_from_etag(value: str | None) -> str | None:
    """'"<64 hex>"' (optionally weak, W/"...") -> the hex digest; anything else (git sha1, CDN md5) -> None."""
    if not value:
        return None
    tag = value.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    tag = tag.strip('"').lower()
    return tag if _SHA256.match(tag) else None


class HuggingFaceFiles:
    def __init__(self, endpoint: str, token: str | None = None):
        self.endpoint = endpoint.rstrip("/")
        self.token = token
        self._endpoint_host = urllib.parse.urlsplit(self.endpoint).netloc

    # ------------------------------------------------------------------------------------------ describe

    def describe(self, bundle: Bundle, file: str) -> RemoteFile:
        url = bundle.hf_url(self.endpoint, file)
        uri = url
        for _ in range(MAX_RELATIVE_REDIRECTS + 1):
            status, headers = self._head(url)
            location = headers.get("Location")
            linked_size = headers.get("X-Linked-Size")
            linked_sha = sha256_from_etag(headers.get("X-Linked-Etag")) or sha256_from_etag(headers.get("ETag"))
            if 300 <= status < 400 and location:
                target = urllib.parse.urljoin(url, location)
                if linked_size or linked_sha or _is_absolute(location):
                    # The redirect to the storage/CDN: the metadata is here, the bytes are there.
                    return RemoteFile(uri=uri, locator=target, size=_int_or_none(linked_size), sha256=linked_sha)
                url = target  # a relative redirect (a renamed repo): ask again
                continue
            size = _int_or_none(linked_size)
            if size is None:
                size = _int_or_none(headers.get("Content-Length"))
            return RemoteFile(uri=uri, locator=url, size=size, sha256=linked_sha)
        raise WorkerError(ErrorClass.SOURCE_UNAVAILABLE, f"{uri}: too many redirects")

    def _head(self, url: str) -> tuple[int, Message]:  # an HTTPMessage, or an HTTPError's headers
        request = urllib.request.Request(url, method="HEAD", headers=self._headers(url))
        try:
            with _no_redirect_opener.open(request, timeout=TIMEOUT_SECONDS) as response:
                return response.status, response.headers
        except urllib.error.HTTPError as e:
            if 300 <= e.code < 400:
                return e.code, e.headers
            raise _http_error(url, e) from e
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            raise TransientError(f"{url}: {_reason(e)}") from e

    # ------------------------------------------------------------------------------------------ fetch

    def open_from(self, remote: RemoteFile, offset: int) -> RangeStream:
        url = remote.locator
        headers = self._headers(url)
        if offset:
            headers["Range"] = f"bytes={offset}-"
        request = urllib.request.Request(url, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS)  # noqa: S310 (http/https only)
        except urllib.error.HTTPError as e:
            if e.code == 416:  # the range cannot be served: fetch the whole file again
                return self.open_from(remote, 0)
            raise _http_error(url, e) from e
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            raise TransientError(f"{url}: {_reason(e)}") from e
        return _range_stream(response)

    def _headers(self, url: str) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        # The token goes to the endpoint only, never to the CDN a redirect points at.
        if self.token and urllib.parse.urlsplit(url).netloc == self._endpoint_host:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers


def _range_stream(response) -> RangeStream:
    start, total = 0, _int_or_none(response.headers.get("Content-Length"))
    if response.status == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if not match:
            response.close()
            raise TransientError(f"unparseable Content-Range {response.headers.get('Content-Range')!r}")
        start = int(match.group(1))
        total = None if match.group(2) == "*" else int(match.group(2))
    return RangeStream(chunks=_chunks(response), start=start, total_size=total)


def _chunks(response) -> Iterator[bytes]:
    with response:
        try:
            while chunk := response.read(CHUNK):
                yield chunk
        except (OSError, http.client.HTTPException) as e:
            raise TransientError(f"read failed: {_reason(e)}") from e


def _http_error(url: str, e: urllib.error.HTTPError) -> Exception:
    if e.code in TRANSIENT_HTTP_CODES:
        return TransientError(f"{url}: HTTP {e.code} {e.reason}")
    hint = " (a gated or private repo needs a token: set token_env)" if e.code in (401, 403) else ""
    return WorkerError(ErrorClass.SOURCE_UNAVAILABLE, f"{url}: HTTP {e.code} {e.reason}{hint}")


def _reason(e: BaseException) -> str:
    reason = getattr(e, "reason", None) or e
    return f"{type(reason).__name__}: {reason}" if not isinstance(reason, str) else reason


def _is_absolute(location: str) -> bool:
    return bool(urllib.parse.urlsplit(location).netloc)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
