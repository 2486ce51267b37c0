"""Shared fixtures: users in every project role, API clients, and a real Celery worker over Redis."""

import contextlib
import dataclasses

import pytest
from rest_framework.test import APIClient

from tasks_app.models import Role

# receiver, canary, tls_receiver, smtp_server: real servers on 127.0.0.1 (tests/support).
pytest_plugins = ["tests.support.fixtures"]


@dataclasses.dataclass
class Cast:
    """One project and a user for every role, plus an outsider and a staff user."""

    project: object
    owner: object
    admin: object
    member: object
    viewer: object
    outsider: object
    staff: object

    def user(self, who):
        return getattr(self, who)


@pytest.fixture(autouse=True)
def _close_the_poll_connection():
    """core/fastpath.py keeps a connection of its own for polls; an open one would stop the test database's drop."""
    yield
    from core import fastpath

    fastpath.close_kept_connection()


@pytest.fixture
def cast(db):
    from tasks_app.tests.factories import MembershipFactory, ProjectFactory, UserFactory

    owner = UserFactory(username="owner")
    project = ProjectFactory(owner=owner, name="Apollo")
    admin = MembershipFactory(project=project, user=UserFactory(username="admin"), role=Role.ADMIN).user
    member = MembershipFactory(project=project, user=UserFactory(username="member"), role=Role.MEMBER).user
    viewer = MembershipFactory(project=project, user=UserFactory(username="viewer"), role=Role.VIEWER).user
    outsider = UserFactory(username="outsider")
    staff = UserFactory(username="staff", is_staff=True)
    return Cast(project, owner, admin, member, viewer, outsider, staff)


@pytest.fixture
def api():
    """api(user) -> an APIClient authenticated as user (None: anonymous)."""

    def make(user=None):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def celery_app():
    from taskmgmt.celery import app

    return app


@pytest.fixture
def redis_clean(celery_app):
    """An empty test Redis database (the test settings use a dedicated db, never the dev one)."""
    from django.conf import settings

    from core.redis import client

    client().flushdb()
    if settings.BROKER_IS_AMQP:  # TEST_BROKER_URL names a RabbitMQ vhost of this run: empty our queues
        with celery_app.connection_for_write() as conn:
            channel = conn.default_channel
            for queue in celery_app.amqp.queues.values():
                bound = queue.bind(channel)
                bound.declare()
                bound.purge()
    yield client()


@pytest.fixture
def start_celery_worker(transactional_db, redis_clean, celery_app):
    """start_celery_worker(queues=[...]) -> context manager running a real worker thread over Redis."""
    from celery.contrib.testing.worker import start_worker
    from django.conf import settings

    @contextlib.contextmanager
    def run(queues=None, concurrency=2, pool="threads"):
        with start_worker(
            celery_app,
            pool=pool,
            concurrency=concurrency,
            queues=list(queues or settings.QUEUE_NAMES),
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=30,
        ) as worker:
            yield worker

    return run


@pytest.fixture
def celery_worker(start_celery_worker):
    """A real worker consuming all six queues."""
    with start_celery_worker() as worker:
        yield worker


def _reset_broker_pools(app):
    from kombu import pools

    pools.reset()  # kombu caches producer pools per connection globally
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker_down(celery_app):
    """Point publishing at a port where nothing listens (a stopped Redis), then restore it.

    Yields a `restore()` callable so a test can bring the broker back mid-test.
    """
    original = celery_app.conf.broker_url
    celery_app.conf.broker_url = "redis://127.0.0.1:1/0"
    _reset_broker_pools(celery_app)

    def restore():
        from core.enqueue import breaker

        celery_app.conf.broker_url = original
        _reset_broker_pools(celery_app)
        breaker.reset()

    yield restore
    restore()


@pytest.fixture
def subprocess_env(transactional_db):
    """Environment for a child process (beat, a worker, a script) that uses this test's database and Redis."""
    import os

    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        url = f"sqlite:///{db['NAME']}"
    else:
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        url = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="taskmgmt.settings.test",
        DATABASE_URL=url,
        TEST_REDIS_URL=settings.CELERY_BROKER_URL,
        PYTHONUNBUFFERED="1",
    )
    return env
