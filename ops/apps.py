from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations: Prometheus metrics, tracing, the operations page in admin. A leaf app: it reads every
    other app's rows; nothing imports it."""

    name = "ops"
    verbose_name = "Operations"

    def ready(self):
        from ops import signals, tracing

        signals.connect()
        tracing.configure()
