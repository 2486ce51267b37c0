"""Every PostgreSQL session asks the server to probe its client, so a vanished worker host's session (and its row
locks) is dropped within about 25 s (tests/faults/test_hosts.py shows the effect on a cut host)."""

import pytest
from django.db import connection


@pytest.mark.django_db
def test_a_django_session_on_postgresql_runs_with_server_keepalives():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    with connection.cursor() as cursor:
        got = {}
        for name in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count", "tcp_user_timeout"):
            cursor.execute(f"SHOW {name}")
            got[name] = cursor.fetchone()[0]
    # Over a Unix socket the server reports 0 for the keepalives: they apply to TCP clients only.
    if connection.settings_dict["HOST"] in ("", None) or str(connection.settings_dict["HOST"]).startswith("/"):
        pytest.skip("connected over a Unix socket")
    assert got == {
        "tcp_keepalives_idle": "10",  # seconds
        "tcp_keepalives_interval": "5",
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": "25000",  # milliseconds
    }
