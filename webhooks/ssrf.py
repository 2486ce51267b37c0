"""SSRF guard: which URLs we accept and which addresses we connect to.

Checked at create, at update and again at every connection; the connection then goes to the address
that was checked (see webhooks.http), so a DNS answer that changes between check and connect
(rebinding) cannot redirect us to an internal host.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from webhooks import conf


class UnsafeTarget(Exception):
    """The URL or one of the addresses its host resolves to is not allowed."""


class Target:
    __slots__ = ("scheme", "host", "port", "path", "netloc")

    def __init__(self, *, scheme, host, port, path, netloc):
        self.scheme, self.host, self.port, self.path, self.netloc = scheme, host, port, path, netloc


def parse_url(url):
    """Shape checks only (no DNS): http(s), a host, no userinfo. Returns a Target."""
    if not isinstance(url, str) or len(url) > 2000:
        raise UnsafeTarget("Enter a URL of at most 2000 characters.")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise UnsafeTarget("The URL must not contain whitespace or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget(f"Invalid URL: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeTarget("Only http and https URLs are allowed.")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise UnsafeTarget("URLs with credentials (user:password@) are not allowed.")
    host = parts.hostname
    if not host:
        raise UnsafeTarget("The URL has no host.")
    if port == 0:
        raise UnsafeTarget("Invalid port.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80), path=path,
                  netloc=parts.netloc)


def unwrap(address):
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip


def is_public(ip):
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def resolve(host, port):
    """Every address `host` resolves to, unwrapped; UnsafeTarget if any is not public (unless allowed)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise UnsafeTarget(f"The host {host!r} could not be resolved.") from None
    addresses = []
    for *_, sockaddr in infos:
        ip = unwrap(sockaddr[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise UnsafeTarget(f"The host {host!r} could not be resolved.")
    if not conf.allow_private_targets():
        bad = [str(ip) for ip in addresses if not is_public(ip)]
        if bad:
            raise UnsafeTarget(f"The host {host!r} resolves to a non-public address ({', '.join(bad)}).")
    return addresses


def check_url(url):
    """Full check used at create/update: shape plus DNS. Returns (Target, addresses)."""
    target = parse_url(url)
    return target, resolve(target.host, target.port)
