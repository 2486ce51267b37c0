"""schemathesis over every operation in /api/schema/, in-process against the WSGI app, as an authenticated owner.

Each operation gets generated cases twice over: with random path ids (mostly someone else's or nothing) and with the
ids of the user's own objects, so handlers run deep, not just their 404 path; plus schema-violating (negative) bodies
and queries. Every case runs in a savepoint that is rolled back, so a generated DELETE does not empty the world for
the next case. A case fails on a 5xx or on any response the schema does not describe (status code, content type,
headers, body).
"""

import collections
import os
import socket
import time

import pytest
import schemathesis
from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# (random ids, own ids) x positive, plus negative with own ids: cases per operation = 3 * EXAMPLES at most.
# Derandomized so CI replays the same cases; FUZZ_RANDOM=1 (and a larger FUZZ_EXAMPLES) explores new ones.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
DERANDOMIZE = not os.environ.get("FUZZ_RANDOM")


@pytest.fixture
def no_internet(monkeypatch):
    """Generated webhook URLs name random hosts; resolution must fail at once instead of waiting on DNS."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host in ("127.0.0.1", "localhost", "::1", "testserver"):
            return real(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "no internet in tests")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def wsgi_app(db):
    """The project's WSGI app, served in this thread on the test's connection (as Django's test client does)."""
    from django.core import signals
    from django.db import close_old_connections

    from taskmgmt.wsgi import application

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield application
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(wsgi_app):
    return schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)


def test_every_operation_survives_generated_requests(api_schema, world, no_internet):
    stats = collections.Counter()
    failures = []
    statuses = collections.Counter()
    auth = {"Authorization": f"Token {world.token}"}
    started = time.monotonic()

    def run(operation, mode, path_parameters):
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

        @hsettings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=DERANDOMIZE,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def one(case):
            stats["cases"] += 1
            with transaction.atomic():
                response = case.call(headers=auth)
                statuses[response.status_code // 100] += 1
                try:
                    case.validate_response(response, checks=CHECKS, headers=auth)
                # Collect every failure instead of raising: shrinking would only slow the run down.
                except (Exception, BaseExceptionGroup) as exc:
                    titles = sorted({getattr(f, "title", type(f).__name__) for f in getattr(exc, "exceptions", [exc])})
                    failures.append(
                        f"{operation.label} [{mode.value}] -> {response.status_code} {titles} "
                        f"query={case.query!r} body={case.body!r}"[:600]
                        + f": {response.text[:300]}"
                    )
                transaction.set_rollback(True)

        try:
            one()
        except Unsatisfiable:
            # Negative mode with every parameter fixed leaves nothing to break (e.g. GET /api/v1/me/).
            assert mode is GenerationMode.NEGATIVE, operation.label
            stats["negative_unsatisfiable"] += 1

    operations = [result.ok() for result in api_schema.get_all_operations()]
    for operation in operations:
        own = world.ids_for(operation.path)
        run(operation, GenerationMode.POSITIVE, None)
        run(operation, GenerationMode.POSITIVE, own)
        run(operation, GenerationMode.NEGATIVE, own)
        stats["operations"] += 1

    elapsed = time.monotonic() - started
    print(
        f"\nschemathesis: {stats['cases']} cases over {stats['operations']} operations in {elapsed:.1f}s; "
        f"status classes {dict(sorted(statuses.items()))}; failures {len(failures)}"
    )
    assert stats["operations"] == len(operations) >= 60
    assert stats["cases"] >= 1000
    assert not failures, "\n".join(failures)
