from django.core.management.base import BaseCommand

from core.schedules import seed_schedules


class Command(BaseCommand):
    help = "Create the shipped periodic schedules that are missing. Never changes existing rows."

    def handle(self, *args, **options):
        created = seed_schedules()
        if created:
            self.stdout.write("created schedules: " + ", ".join(created))
        else:
            self.stdout.write("all schedules present; nothing changed")
