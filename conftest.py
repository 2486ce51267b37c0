"""Shared fixtures: users in every project role, API clients, and a real Celery worker over Redis."""

import contextlib
import dataclasses

import pytest
from rest_framework.test import APIClient

from tasks_app.models import Role


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
    from core.redis import client

    client().flushdb()
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
