"""Outbound HTTP for deliveries: one shared async httpx client, bounded concurrency, pinned addresses.

For each request the host is resolved and checked (webhooks.ssrf), then the connection goes to that
checked IP while the Host header and TLS SNI/certificate check use the original name. Redirects are
never followed and proxy environment variables are ignored (trust_env=False).
"""

import asyncio
import dataclasses
import logging
import socket
import ssl
import time

import httpx

from webhooks import conf
from webhooks.ssrf import UnsafeTarget, parse_url, resolve

USER_AGENT = "taskmgmt-webhooks/1.0"

# httpx logs every request URL at INFO; webhook URLs often carry tokens in their path, so keep it quiet.
logging.getLogger("httpx").setLevel(logging.WARNING)


@dataclasses.dataclass
class Outcome:
    status_code: int | None = None
    error_class: str = ""
    body: str = ""
    retry_after: float | None = None
    duration_ms: int = 0


def _ip_url(target, ip):
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"{target.scheme}://{host}:{target.port}{target.path}"


def _host_header(target):
    return target.netloc.rsplit("@", 1)[-1]


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


async def _read_limited(response, limit):
    chunks, size = [], 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit].decode("utf-8", errors="replace")


async def _resolve(host, port):
    return await asyncio.get_running_loop().run_in_executor(None, resolve, host, port)


async def post(client, *, url, body: bytes, headers, timeout=None, resolver=_resolve):
    """One POST attempt. Never raises: network and guard errors become Outcome.error_class."""
    timeout = timeout or conf.timeout_seconds()
    started = time.perf_counter()
    outcome = Outcome()
    try:
        target = parse_url(url)
        addresses = await resolver(target.host, target.port)
        request_headers = {
            "Host": _host_header(target),
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **headers,
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        async with asyncio.timeout(timeout):
            # Only the checked addresses are tried, in resolver order (e.g. ::1 then 127.0.0.1).
            for i, ip in enumerate(addresses):
                request = client.build_request("POST", _ip_url(target, ip), content=body, headers=request_headers,
                                               extensions=extensions)
                try:
                    response = await client.send(request, stream=True, follow_redirects=False)
                    break
                except httpx.ConnectError:
                    if i == len(addresses) - 1:
                        raise
            try:
                outcome.status_code = response.status_code
                outcome.retry_after = parse_retry_after(response.headers.get("retry-after"))
                outcome.body = await _read_limited(response, conf.response_body_limit())
            finally:
                await response.aclose()
    except UnsafeTarget:
        outcome.error_class = "UnsafeTarget"
    except TimeoutError:
        outcome.error_class = "Timeout"
    except httpx.TimeoutException as exc:
        outcome.error_class = type(exc).__name__
    except (httpx.HTTPError, OSError, ValueError) as exc:
        outcome.error_class = type(exc).__name__
    outcome.duration_ms = int((time.perf_counter() - started) * 1000)
    return outcome


def make_client(*, concurrency):
    verify = ssl.create_default_context(cafile=conf.ca_bundle()) if conf.ca_bundle() else True
    transport = httpx.AsyncHTTPTransport(
        verify=verify,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        # Headers and body go out as separate writes; without NODELAY each request can stall on delayed ACKs.
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
    )
    return httpx.AsyncClient(transport=transport, trust_env=False, follow_redirects=False,
                             timeout=httpx.Timeout(conf.timeout_seconds()))


def post_many(requests, *, concurrency=None):
    """requests: list of (key, url, body, headers_fn). headers_fn() is called just before each send, so
    the signed timestamp is fresh. Returns {key: Outcome}, sending at most `concurrency` at once."""
    concurrency = concurrency or conf.concurrency()

    async def run():
        semaphore = asyncio.Semaphore(concurrency)
        lookups = {}

        async def resolver(host, port):
            # One checked lookup per host and batch (a batch lasts seconds); every request still connects
            # only to an address that passed the check.
            if (host, port) not in lookups:
                lookups[host, port] = asyncio.ensure_future(_resolve(host, port))
            return await lookups[host, port]

        async with make_client(concurrency=concurrency) as client:
            async def one(key, url, body, headers_fn):
                async with semaphore:
                    return key, await post(client, url=url, body=body, headers=headers_fn(), resolver=resolver)

            results = await asyncio.gather(*(one(*r) for r in requests))
        return dict(results)

    return asyncio.run(run())
