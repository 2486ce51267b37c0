from celery import shared_task

from tests.testapp.services import echo_process


@shared_task(name="core.testapp_echo")
def testapp_echo(echo_id):
    return {"processed": echo_process(echo_id=echo_id)}
