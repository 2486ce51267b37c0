"""Throttles on the Django cache (Redis): 429 with Retry-After after the configured count, the strict `auth`
scope for logins and bad tokens per IP, RateLimit/RateLimit-Policy headers on every /api/ response, and an
API that keeps answering when the cache is down."""

import itertools
import re

import pytest
from rest_framework.test import APIClient

from core.throttling import parse_rate
from tests.support.api import api_error_codes

_ips = itertools.count(1)
POLICY = re.compile(r'^"(\w+)";q=(\d+);w=(\d+)$')
STATE = re.compile(r'^"(\w+)";r=(\d+);t=(\d+)$')


@pytest.fixture
def fresh_ip():
    """A client address of its own per test, so counters of other tests (all 127.0.0.1) do not interfere."""
    return f"10.13.{next(_ips) % 250}.{next(_ips) % 250 + 1}"


@pytest.fixture(autouse=True)
def no_old_counters(db):
    """Throttle counters live in Redis across tests; user ids repeat between tests, so start from none."""
    from django.core.cache import cache

    client = cache._cache.get_client(write=True)
    for key in client.scan_iter("*throttle:*"):
        client.delete(key)


@pytest.fixture
def rates(settings):
    def set_rates(**changes):
        settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, **changes}

    return set_rates


def headers_of(r):
    policy, state = POLICY.match(r["RateLimit-Policy"]), STATE.match(r["RateLimit"])
    assert policy and state, (r["RateLimit-Policy"], r["RateLimit"])
    return policy.group(1), int(policy.group(2)), int(policy.group(3)), int(state.group(2)), int(state.group(3))


@pytest.mark.parametrize(
    "rate, parsed", [("10/min", (10, 60)), ("5/s", (5, 1)), ("100/5min", (100, 300)), ("2/hours", (2, 3600))]
)
def test_rates_parse(rate, parsed):
    assert parse_rate(rate) == parsed and parse_rate("") is None


def test_login_is_throttled_per_ip_after_the_configured_count(db, rates, fresh_ip):
    rates(auth="3/min")
    client = APIClient(REMOTE_ADDR=fresh_ip)
    answers = [client.post("/api/v1/auth/token/", {"username": "x", "password": "y"}, format="json") for _ in range(5)]
    assert [r.status_code for r in answers] == [400, 400, 400, 429, 429]
    last = answers[-1]
    assert api_error_codes(last) == {None: ["throttled"]}
    assert 1 <= int(last["Retry-After"]) <= 60
    assert headers_of(answers[0])[:4] == ("auth", 3, 60, 2)
    assert headers_of(last)[:4] == ("auth", 3, 60, 0)
    # another address is not affected
    other = APIClient(REMOTE_ADDR=fresh_ip + "0")
    assert other.post("/api/v1/auth/token/", {"username": "x", "password": "y"}, format="json").status_code == 400


def test_guessing_tokens_is_throttled_like_guessing_passwords(db, rates, fresh_ip):
    rates(auth="2/min")
    client = APIClient(REMOTE_ADDR=fresh_ip)
    statuses = [client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token guess{i}").status_code for i in range(4)]
    assert statuses == [401, 401, 429, 429]


def test_authenticated_requests_are_throttled_per_user(cast, api, rates):
    rates(user="4/min")
    member, owner = api(cast.member), api(cast.owner)
    statuses = [member.get("/api/v1/me/").status_code for _ in range(6)]
    assert statuses == [200] * 4 + [429] * 2
    assert owner.get("/api/v1/me/").status_code == 200  # per user, not global


def test_a_window_counter_expires_with_its_window(cast, api, rates):
    """The counter is created with the window's expiry (plus a second), and later requests do not extend it."""
    from django.core.cache import cache

    rates(user="50/min")
    member = api(cast.member)
    member.get("/api/v1/me/")
    client = cache._cache.get_client(write=True)
    [key] = list(client.scan_iter("*throttle:user:*"))
    first = client.pttl(key)
    assert 0 < first <= 61_000
    client.pexpire(key, 5_000)  # as if the window were nearly over: another request must not push it back
    member.get("/api/v1/me/")
    assert 0 < client.pttl(key) <= 5_000 and int(client.get(key)) == 2


def test_anonymous_requests_are_throttled_per_ip(db, rates, fresh_ip):
    rates(anon="2/min")
    client = APIClient(REMOTE_ADDR=fresh_ip)
    assert [client.get("/api/v1/").status_code for _ in range(3)] == [200, 200, 429]


@pytest.mark.parametrize("url", ["/api/v1/", "/api/v1/tasks/", "/api/v1/nope/", "/api/v1/tasks/abc/"])
def test_every_api_response_has_ratelimit_headers(db, url, fresh_ip):
    r = APIClient(REMOTE_ADDR=fresh_ip).get(url)
    scope, quota, window, remaining, reset = headers_of(r)
    assert scope == "anon" and quota >= remaining and 0 < reset <= window


def test_authenticated_responses_show_the_user_policy(cast, api):
    scope, quota, _, remaining, _ = headers_of(api(cast.member).get("/api/v1/tasks/"))
    assert scope == "user" and remaining == quota - 1


def test_a_dead_cache_lets_requests_through(cast, api, settings):
    settings.CACHES = {
        **settings.CACHES,
        "dead": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        },
    }
    settings.API_THROTTLE_CACHE = "dead"
    r = api(cast.member).get("/api/v1/me/")
    assert r.status_code == 200 and "RateLimit" not in r
