"""SSRF guard: which URLs we accept and which addresses we connect to.

Checked at create, at update and again at every connection; the connection then goes to the address
that was checked (see webhooks.http), so a DNS answer that changes between check and connect
(rebinding) cannot redirect us to an internal host.

The stable entry points for HTTP clients are:

- `check_address(ip)`: raise UnsafeTarget unless one IP address may be connected to;
- `resolve_and_check(host, port)`: resolve, check every answer, return the addresses to connect to.

An address is refused when it lies in any IANA special-purpose range (IPv4 and IPv6 registries, plus the
deprecated site-local and IPv4-compatible ranges) or outside IPv6 global unicast (2000::/3), and when it
is an IPv6 form that embeds an IPv4 address (mapped, compatible, 6to4, NAT64, Teredo) whose embedded
address would be refused. `WEBHOOK_ALLOWED_NETWORKS` lists networks admitted anyway (e.g. `127.0.0.1/32`
for a local receiver in development); link-local addresses (169.254.0.0/16 with the cloud metadata
service, fe80::/10) are admitted only through a listed network that is itself inside the link-local range.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from webhooks import conf

_net = ipaddress.ip_network

# IANA IPv4 Special-Purpose Address Registry (RFC 6890 and updates), plus multicast, reserved, broadcast.
SPECIAL_IPV4 = tuple(
    _net(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # shared address space (CGNAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local (cloud metadata 169.254.169.254)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments (DS-Lite, NAT64 discovery, ...)
        "192.0.2.0/24",  # documentation TEST-NET-1
        "192.31.196.0/24",  # AS112-v4
        "192.52.193.0/24",  # AMT
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",  # private
        "192.175.48.0/24",  # direct delegation AS112
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation TEST-NET-2
        "203.0.113.0/24",  # documentation TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved (includes 255.255.255.255 broadcast)
    )
)

# IANA IPv6 Special-Purpose Address Registry, plus deprecated ranges; anything outside 2000::/3 is refused too.
SPECIAL_IPV6 = tuple(
    _net(n)
    for n in (
        "::/128",  # unspecified
        "::1/128",  # loopback
        "::/96",  # IPv4-compatible (deprecated)
        "::ffff:0:0/96",  # IPv4-mapped
        "64:ff9b::/96",  # NAT64 well-known prefix
        "64:ff9b:1::/48",  # NAT64 local-use prefix
        "100::/64",  # discard-only
        "100:0:0:1::/64",  # dummy prefix
        "2001::/23",  # IETF protocol assignments (Teredo 2001::/32, benchmarking, ORCHID, ...)
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4
        "2620:4f:8000::/48",  # direct delegation AS112
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing SIDs
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
GLOBAL_UNICAST_V6 = _net("2000::/3")
LINK_LOCAL = (_net("169.254.0.0/16"), _net("fe80::/10"))
NAT64 = (_net("64:ff9b::/96"), _net("64:ff9b:1::/48"))


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
    return Target(
        scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80), path=path, netloc=parts.netloc
    )


def as_ip(address):
    """An ipaddress object from a str (a zone id such as %eth0 is dropped) or an ipaddress object."""
    if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return address
    return ipaddress.ip_address(str(address).split("%", 1)[0])


def unwrap(address):
    """The address to connect to: an IPv4-mapped IPv6 address becomes its IPv4 address."""
    ip = as_ip(address)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip


def embedded_ipv4(address):
    """Every IPv4 address an IPv6 address carries: mapped, compatible, 6to4, NAT64, Teredo (server and the
    XOR-obfuscated client, which `ipaddress` de-obfuscates)."""
    ip = as_ip(address)
    if ip.version != 6:
        return []
    found = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip in _net("::/96") and int(ip) > 1:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if any(ip in n for n in NAT64):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return found


def special_range(address):
    """The special-purpose network `address` lies in (None for an ordinary public unicast address)."""
    ip = as_ip(address)
    if ip.version == 4:
        for net in SPECIAL_IPV4:
            if ip in net:
                return net
    else:
        for net in SPECIAL_IPV6:
            if ip in net:
                return net
        if ip not in GLOBAL_UNICAST_V6:
            return GLOBAL_UNICAST_V6  # reserved by IETF: outside global unicast
    if not ip.is_global:  # belt and braces: whatever the standard library also knows to be non-global
        return ipaddress.ip_network(ip)
    return None


def is_public(address):
    """True when nothing about `address` (nor any IPv4 address it embeds) is special-purpose."""
    ip = as_ip(address)
    return special_range(ip) is None and all(special_range(v4) is None for v4 in embedded_ipv4(ip))


def allowed_networks():
    value = conf.WEBHOOK_ALLOWED_NETWORKS or ()
    if isinstance(value, str):
        value = value.split(",")
    return tuple(ipaddress.ip_network(str(n).strip(), strict=False) for n in value if str(n).strip())


def _listed(ip, networks):
    hits = [n for n in networks if n.version == ip.version and ip in n]
    if any(a.version == ll.version and a in ll for a in (ip, *embedded_ipv4(ip)) for ll in LINK_LOCAL):
        # Link-local (metadata service) only through a network listed inside the link-local range itself.
        hits = [n for n in hits if any(n.version == ll.version and n.subnet_of(ll) for ll in LINK_LOCAL)]
    return bool(hits)


def is_allowed(address, networks=None):
    """`address` is listed in WEBHOOK_ALLOWED_NETWORKS (an IPv4-mapped address counts as its IPv4 address)."""
    networks = allowed_networks() if networks is None else networks
    ip = as_ip(address)
    return _listed(ip, networks) or (ip.version == 6 and ip.ipv4_mapped is not None and _listed(unwrap(ip), networks))


def check_address(address):
    """Raise UnsafeTarget unless a connection to `address` (str or ipaddress object) is allowed."""
    ip = as_ip(address)
    if is_allowed(ip):
        return
    net = special_range(ip)
    if net is not None:
        raise UnsafeTarget(f"{ip} is in the special-purpose range {net}.")
    for v4 in embedded_ipv4(ip):
        net = special_range(v4)
        if net is not None:
            raise UnsafeTarget(f"{ip} embeds {v4}, which is in the special-purpose range {net}.")


def resolve_and_check(host, port):
    """Every address `host` resolves to (IPv4-mapped ones unwrapped); UnsafeTarget if any is refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise UnsafeTarget(f"The host {host!r} could not be resolved.") from None
    addresses = []
    for *_, sockaddr in infos:
        ip = as_ip(sockaddr[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise UnsafeTarget(f"The host {host!r} could not be resolved.")
    for ip in addresses:
        try:
            check_address(ip)
        except UnsafeTarget as exc:
            raise UnsafeTarget(f"The host {host!r} resolves to a non-public address: {exc}") from None
    return list(dict.fromkeys(unwrap(ip) for ip in addresses))


resolve = resolve_and_check  # the name webhooks.http used before


def check_url(url):
    """Full check used at create/update: shape plus DNS. Returns (Target, addresses)."""
    target = parse_url(url)
    return target, resolve_and_check(target.host, target.port)
