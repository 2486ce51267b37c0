from django.db import models

from core.outbox import OutboxRow


class Echo(OutboxRow):
    PENDING, DONE = "pending", "done"
    state = models.CharField(max_length=16, default=PENDING)
    times_processed = models.PositiveIntegerField(default=0)
