from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Run a Celery worker with taskmgmt's defaults (queues, per-queue prefetch, pool)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--queues", "-Q", default=",".join(settings.QUEUE_NAMES), help="Comma-separated queues (default: all six)."
        )
        parser.add_argument("--concurrency", "-c", type=int, default=None)
        parser.add_argument(
            "--pool", "-P", default=None, help="prefork (default), or threads for a webhooks-only worker (I/O bound)."
        )
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
        argv = [
            "worker",
            "-Q",
            ",".join(names),
            "-c",
            str(concurrency),
            "-P",
            pool,
            "--prefetch-multiplier",
            str(prefetch),
            "-l",
            loglevel,
            "-E",
        ]
        if hostname:
            argv += ["-n", hostname]
        if settings.WORKER_METRICS_PORT:
            self._serve_metrics(settings.WORKER_METRICS_ADDR, settings.WORKER_METRICS_PORT)
        self.stdout.write(f"worker: queues={','.join(names)} pool={pool} concurrency={concurrency} prefetch={prefetch}")
        app.worker_main(argv=argv)

    def _serve_metrics(self, addr, port):
        """This worker's task metrics on addr:port. Prefork children write to a directory of this worker's
        own (prometheus_client's multiprocess mode); the parent serves the sum over its children."""
        import os
        import sys
        import tempfile

        if "prometheus_client" in sys.modules and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            raise CommandError("prometheus_client was imported before the metrics directory was chosen")
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="taskmgmt-worker-metrics-"))
        from prometheus_client import CollectorRegistry, multiprocess, start_http_server

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        start_http_server(port, addr=addr, registry=registry)
        self.stdout.write(f"worker metrics: http://{addr}:{port}/metrics")
