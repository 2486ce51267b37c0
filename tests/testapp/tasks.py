from celery import shared_task

from tests.testapp.services import echo_process


@shared_task(name="core.testapp_echo")
def testapp_echo(echo_id):
    return {"processed": echo_process(echo_id=echo_id)}


@shared_task(name="core.testapp_fail")
def testapp_fail(reason="the test asked for it"):
    """Always fails: the operations page and metrics show failures by task with their error."""
    raise ValueError(reason)


@shared_task(name="core.testapp_slow_echo")
def testapp_slow_echo(echo_id, seconds=1.5):
    """A task that takes a while (graceful shutdown tests), then processes its row idempotently."""
    import time

    time.sleep(seconds)
    return {"processed": echo_process(echo_id=echo_id)}
