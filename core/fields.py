from django.utils import timezone
from rest_framework import serializers


class AwareDateTimeField(serializers.DateTimeField):
    """Accepts only datetimes with an explicit offset: a naive time is ambiguous, so it is a 400."""

    default_error_messages = {
        "naive": "Include a timezone offset, e.g. 2026-05-01T09:00:00+02:00 or ...Z.",
    }

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)
