from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Run a Celery worker with taskmgmt's defaults (queues, per-queue prefetch, pool)."

    def add_arguments(self, parser):
        parser.add_argument("--queues", "-Q", default=",".join(settings.QUEUE_NAMES),
                            help="Comma-separated queues (default: all six).")
        parser.add_argument("--concurrency", "-c", type=int, default=None)
        parser.add_argument("--pool", "-P", default=None,
                            help="prefork (default), or threads for a webhooks-only worker (I/O bound).")
        parser.add_argument("--loglevel", "-l", default="INFO")
        parser.add_argument("--hostname", "-n", default=None)

    def handle(self, *args, queues, concurrency, pool, loglevel, hostname, **options):
        from taskmgmt.celery import app

        names = [q.strip() for q in queues.split(",") if q.strip()]
        unknown = sorted(set(names) - set(settings.QUEUE_NAMES))
        if unknown:
            raise CommandError(f"unknown queues: {', '.join(unknown)}; known: {', '.join(settings.QUEUE_NAMES)}")
        if pool is None:
            pool = "threads" if names == ["webhooks"] else "prefork"
        if concurrency is None:
            concurrency = 16 if pool == "threads" else 2
        prefetch = min(settings.PREFETCH_BY_QUEUE[q] for q in names)
        argv = ["worker", "-Q", ",".join(names), "-c", str(concurrency), "-P", pool,
                "--prefetch-multiplier", str(prefetch), "-l", loglevel, "-E"]
        if hostname:
            argv += ["-n", hostname]
        self.stdout.write(f"worker: queues={','.join(names)} pool={pool} concurrency={concurrency} prefetch={prefetch}")
        app.worker_main(argv=argv)
