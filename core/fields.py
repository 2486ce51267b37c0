from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
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


def _timezone_names():
    import zoneinfo

    return sorted(zoneinfo.available_timezones())


@extend_schema_field({"type": "string", "enum": _timezone_names(), "description": "An IANA timezone name."})
class TimezoneField(serializers.CharField):
    """An IANA timezone name; the schema lists them (the ones this server's tz database knows)."""

    default_error_messages = {"timezone": "'{value}' is not a known IANA timezone (e.g. Europe/Berlin)."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 64)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value not in _TIMEZONES:
            self.fail("timezone", value=value)
        return value


_TIMEZONES = frozenset(_timezone_names())
