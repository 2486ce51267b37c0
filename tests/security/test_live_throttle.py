"""Throttling seen from outside: a bounded brute-force loop against the token endpoint of a live gunicorn server,
from 127.0.0.1, answers 429 once the configured limit is spent, with Retry-After and the RateLimit headers."""

import re
import time
import uuid

import httpx
import pytest

from tests.security.live import LiveStack

LIMIT = 5  # THROTTLE_RATE_AUTH for this server (the shipped default is 10/min)
TRIES = 3 * LIMIT  # bounded: the loop stops here whatever the server says


@pytest.fixture
def live(subprocess_env, tmp_path):
    stack = LiveStack(subprocess_env, tmp_path)
    # A key prefix of its own, so no earlier counter for 127.0.0.1 is seen.
    stack.web(THROTTLE_RATE_AUTH=f"{LIMIT}/min", CACHE_KEY_PREFIX=f"throttle-test-{uuid.uuid4().hex[:8]}")
    yield stack
    stack.stop()


def test_token_endpoint_brute_force_gets_429_after_the_limit(live):
    from tasks_app.tests.factories import UserFactory

    victim = UserFactory(username="victim")
    # Counters are fixed 60 s windows: start the (1-2 s) loop early in one so it does not straddle two.
    if time.time() % 60 > 45:
        time.sleep(60 - time.time() % 60 + 0.1)
    answers = []
    with httpx.Client(base_url=live.url, timeout=30) as client:
        for i in range(TRIES):
            answers.append(
                client.post("/api/v1/auth/token/", json={"username": victim.username, "password": f"guess-{i}"})
            )
    statuses = [r.status_code for r in answers]
    assert statuses == [400] * LIMIT + [429] * (TRIES - LIMIT), statuses
    first, blocked = answers[0], answers[LIMIT]
    assert first.json()["errors"][0]["code"] == "invalid_credentials"
    assert blocked.json() == {
        "type": "client_error",
        "errors": [{"code": "throttled", "detail": blocked.json()["errors"][0]["detail"], "attr": None}],
    }
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    assert blocked.headers["RateLimit-Policy"] == f'"auth";q={LIMIT};w=60'
    assert re.fullmatch(r'"auth";r=0;t=\d+', blocked.headers["RateLimit"])
    assert re.fullmatch(rf'"auth";r={LIMIT - 1};t=\d+', first.headers["RateLimit"])
    # The right password does not get through either while the window lasts.
    with httpx.Client(base_url=live.url, timeout=30) as client:
        r = client.post("/api/v1/auth/token/", json={"username": victim.username, "password": "pw-123456"})
    assert r.status_code == 429
    print(f"\nlive throttle: {TRIES} tries, statuses {statuses}, Retry-After {blocked.headers['Retry-After']}s")
