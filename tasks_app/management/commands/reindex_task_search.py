"""Rebuild every task's PostgreSQL search document (after changing TASK_SEARCH_LANGUAGE, or a raw import)."""

from django.core.management.base import BaseCommand
from django.db import transaction

from tasks_app.models import Task
from tasks_app.services.search import search_reindex, uses_postgres


class Command(BaseCommand):
    help = "Recompute Task.search_vector for all tasks, in batches (no-op on SQLite)."

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=5000)

    def handle(self, *args, batch, **options):
        if not uses_postgres():
            self.stdout.write("SQLite: search has no stored document; nothing to do.")
            return
        last, done = 0, 0
        while True:
            ids = list(Task.objects.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:batch])
            if not ids:
                break
            with transaction.atomic():
                search_reindex(task_ids=ids)
            done += len(ids)
            last = ids[-1]
        self.stdout.write(f"reindexed {done} tasks")
