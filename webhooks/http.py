"""Outbound HTTP for deliveries: one aiohttp session per batch, bounded concurrency, checked addresses.

Why aiohttp: measured against the same minimal receiver on 127.0.0.1 (bench/webhooks.py prints it each
run), httpx 0.28 manages ~150 requests/s with 100 in flight, aiohttp thousands.

SSRF: every host goes through `CheckedResolver` (webhooks.ssrf.resolve: resolve, refuse unless every
address is allowed, return only the checked addresses), so the connection goes to a checked IP while
the URL's name stays in the Host header and in TLS SNI / the certificate check. aiohttp does not ask a
resolver for IP literals, so `post` runs the same check on every target before the request (per batch
the answer is cached, and the connector then gets that same answer: no second lookup that a rebinding
DNS server could change). Redirects are never followed and proxy environment variables are ignored
(trust_env=False).
"""

import asyncio
import dataclasses
import functools
import logging
import socket
import ssl
import time

import aiohttp
from aiohttp.abc import AbstractResolver

from webhooks import conf
from webhooks.ssrf import UnsafeTarget, parse_url, resolve

USER_AGENT = "taskmgmt-webhooks/1.0"

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Outcome:
    status_code: int | None = None
    error_class: str = ""
    body: str = ""
    retry_after: float | None = None
    duration_ms: int = 0


def parse_retry_after(value):
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


class CheckedResolver(AbstractResolver):
    """aiohttp resolver that only ever returns addresses webhooks.ssrf allowed. One lookup per (host,
    port) for the resolver's lifetime (a batch lasts seconds); a refusal raises UnsafeTarget."""

    def __init__(self):
        self._lookups = {}

    async def checked(self, host, port):
        key = (host, port)
        if key not in self._lookups:
            self._lookups[key] = asyncio.ensure_future(
                asyncio.get_running_loop().run_in_executor(None, resolve, host, port)
            )
        return await self._lookups[key]

    async def resolve(self, host, port=0, family=socket.AF_INET):
        addresses = await self.checked(host, port)
        return [
            {
                "hostname": host,
                "host": str(ip),
                "port": port,
                "family": socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            }
            for ip in addresses
        ]

    async def close(self):
        for future in self._lookups.values():
            future.cancel()


def _error_class(exc):
    """Stable names for the attempt log (the same whatever the client library)."""
    if isinstance(exc, UnsafeTarget):
        return "UnsafeTarget"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return "Timeout"
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, unreachable, TLS handshake or certificate
        return "ConnectError"
    return type(exc).__name__


async def post(session, resolver, *, url, body: bytes, headers, timeout=None):
    """One POST attempt. Never raises: network and guard errors become Outcome.error_class."""
    timeout = timeout or conf.WEBHOOK_TIMEOUT_SECONDS
    started = time.perf_counter()
    outcome = Outcome()
    try:
        target = parse_url(url)
        await resolver.checked(target.host, target.port)  # IP literals never reach the resolver otherwise
        request_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
        async with asyncio.timeout(timeout):
            async with session.post(
                url, data=body, headers=request_headers, allow_redirects=False, max_redirects=0
            ) as response:
                outcome.status_code = response.status
                outcome.retry_after = parse_retry_after(response.headers.get("Retry-After"))
                limit = conf.WEBHOOK_RESPONSE_BODY_LIMIT
                raw = await response.content.read(limit)
                outcome.body = raw[:limit].decode("utf-8", errors="replace")
                if not response.content.at_eof():
                    response.close()  # do not drain a large body: drop the connection instead
    except (UnsafeTarget, TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        outcome.error_class = _error_class(exc)
    outcome.duration_ms = int((time.perf_counter() - started) * 1000)
    return outcome


def _ssl_context():
    return _ssl_context_for(conf.WEBHOOK_CA_BUNDLE)


@functools.lru_cache(maxsize=4)
def _ssl_context_for(bundle):
    """Loading the CA store costs tens of ms: once per process and bundle, not once per batch."""
    return ssl.create_default_context(cafile=bundle) if bundle else ssl.create_default_context()


def make_session(*, concurrency, resolver):
    connector = aiohttp.TCPConnector(
        limit=concurrency,
        limit_per_host=0,
        resolver=resolver,
        use_dns_cache=False,  # the resolver caches checked answers itself, per batch
        ssl=_ssl_context(),
    )
    return aiohttp.ClientSession(
        connector=connector,
        trust_env=False,
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=conf.WEBHOOK_TIMEOUT_SECONDS),
        skip_auto_headers=("Accept-Encoding",),
    )


def post_many(requests, *, concurrency=None):
    """requests: list of (key, url, body, headers_fn). headers_fn() is called just before each send, so
    the signed timestamp is fresh. Returns {key: Outcome}, sending at most `concurrency` at once."""
    concurrency = concurrency or conf.WEBHOOK_CONCURRENCY

    async def run():
        semaphore = asyncio.Semaphore(concurrency)
        resolver = CheckedResolver()
        async with make_session(concurrency=concurrency, resolver=resolver) as session:

            async def one(key, url, body, headers_fn):
                async with semaphore:
                    return key, await post(session, resolver, url=url, body=body, headers=headers_fn())

            results = await asyncio.gather(*(one(*r) for r in requests))
        return dict(results)

    return asyncio.run(run())
