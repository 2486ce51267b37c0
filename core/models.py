from django.conf import settings
from django.db import models


class IdempotencyKey(models.Model):
    """One `Idempotency-Key` of one user (core/idempotency.py): a claim while the first request runs, then its answer.

    `response_status` is null while the first request is in flight (`locked_until` bounds how long a crashed
    request can hold the key); set in the same transaction as the request's own writes otherwise.
    Rows expire at `expires_at` (24 h after the first use) and `core.cleanup_idempotency_keys` deletes them.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body of the first request.")
    locked_until = models.DateTimeField()
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.BinaryField(blank=True, default=b"")
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="uniq_idempotency_key_per_user")]
        indexes = [models.Index(fields=["expires_at"])]

    def __str__(self):
        return f"idempotency key {self.key!r} of user {self.user_id}"
