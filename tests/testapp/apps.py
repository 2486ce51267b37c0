from django.apps import AppConfig


class TestappConfig(AppConfig):
    """A minimal side-effect row used to test the durable-enqueue mechanism itself (test settings only)."""

    name = "tests.testapp"
    label = "testapp"

    def ready(self):
        from core import outbox
        from tests.testapp.models import Echo

        outbox.register(
            name="testapp.echo",
            queryset=lambda: Echo.objects.filter(state=Echo.PENDING),
            task_name="core.testapp_echo",
        )
