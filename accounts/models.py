"""API tokens: only a SHA-256 digest of the key is stored; the key itself is shown once, on creation."""

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    # The first characters of the key (not secret: a key is 40+ random characters); lets a person recognise it.
    prefix = models.CharField(max_length=12)
    digest = models.CharField(max_length=64, unique=True)  # sha256(key) hex
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"
