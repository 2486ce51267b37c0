from django.db import transaction
from django.db.models import F

from core.enqueue import enqueue_on_commit
from tests.testapp.models import Echo


@transaction.atomic
def echo_create():
    echo = Echo.objects.create()
    enqueue_on_commit("core.testapp_echo", args=[echo.pk])
    return echo


def echo_process(*, echo_id):
    # Idempotent: only the first delivery flips pending -> done.
    return Echo.objects.filter(pk=echo_id, state=Echo.PENDING).update(
        state=Echo.DONE, times_processed=F("times_processed") + 1
    )
