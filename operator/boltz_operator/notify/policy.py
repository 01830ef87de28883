"""Which hosts webhooks may reach: deny by default, the chart's notifications.allowedHosts beyond it.

A URL in a run's spec is written by whoever may create runs, and the operator POSTs from inside the cluster: without
a policy it could be made to reach the cloud metadata endpoint, the apiserver or any in-cluster Service. So:
- the host must match an entry of `allowed_hosts` (exact, or `*.example.com` for its subdomains);
- addresses that are not globally routable (loopback, private, link-local such as 169.254.169.254, CGNAT, ...) and
  names that only mean something inside the cluster (single-label, *.svc, *.cluster.local, *.local, localhost) are
  refused even then, unless `allow_private_addresses`;
- the check applies to the addresses a name resolves to, at connection time (`PolicyResolver`), so a name that
  resolves to an allowed address when checked and a private one when connected (DNS rebinding) is still refused.
Redirects are not followed (sender.py), so a 3xx cannot lead elsewhere.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

CLUSTER_SUFFIXES = (".svc", ".cluster.local", ".local", ".internal", ".localhost")


class Refused(Exception):
    """The policy does not allow this URL or address; the message says which rule, for the Event."""


@dataclass(frozen=True)
class HostPolicy:
    """allowed_hosts: host names (lower case), `*.domain` for subdomains, or IP literals."""

    allowed_hosts: tuple[str, ...] = ()
    allow_private_addresses: bool = False

    def check_url(self, url: str) -> str:
        """The URL's host when the policy allows it; raises Refused (with the rule) otherwise."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        if parts.scheme not in ("http", "https") or not host:
            raise Refused(f"a {parts.scheme or 'schemeless'} URL is not an http(s) URL with a host")
        if not any(_matches(host, entry) for entry in self.allowed_hosts):
            raise Refused(f"host {host} is not in the operator's notifications.allowedHosts")
        if self.allow_private_addresses:
            return host
        if _is_ip(host):
            self.check_address(host)
        elif "." not in host or host == "localhost" or host.endswith(CLUSTER_SUFFIXES):
            raise Refused(f"host {host} is a cluster-internal name (notifications.allowPrivateAddresses is false)")
        return host

    def check_address(self, address: str) -> None:
        """Raises Refused when `address` is not globally routable and private addresses are not allowed."""
        if self.allow_private_addresses:
            return
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if not ip.is_global:
            raise Refused(f"address {address} is not public (notifications.allowPrivateAddresses is false)")


def _matches(host: str, entry: str) -> bool:
    entry = entry.lower().rstrip(".")
    if entry.startswith("*."):
        return host.endswith(entry[1:])
    return host == entry


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class RefusedAddress(OSError):
    """Raised by PolicyResolver: every address of the name is refused (aiohttp wraps it in a connection error)."""


class PolicyResolver(AbstractResolver):
    """aiohttp's resolver, keeping only the addresses the policy allows (the connection uses only those)."""

    def __init__(self, policy: HostPolicy, inner: AbstractResolver | None = None):
        self.policy = policy
        self.inner = inner or ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET):
        results: list[ResolveResult] = await self.inner.resolve(host, port, family)
        allowed = []
        for result in results:
            try:
                self.policy.check_address(result["host"])
            except Refused:
                continue
            allowed.append(result)
        if not allowed:
            addresses = ", ".join(r["host"] for r in results)
            raise RefusedAddress(f"{host} resolves only to addresses the notification policy refuses ({addresses})")
        return allowed

    async def close(self) -> None:
        await self.inner.close()
