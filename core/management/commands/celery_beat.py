from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run Celery beat with the database scheduler. Several may run: a database lock elects one leader."

    def add_arguments(self, parser):
        parser.add_argument("--loglevel", "-l", default="INFO")

    def handle(self, *args, loglevel, **options):
        from taskmgmt.celery import app

        app.start(argv=["beat", "-S", "core.beat:DatabaseScheduler", "-l", loglevel, "--pidfile", ""])
