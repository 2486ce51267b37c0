import zoneinfo

from django.core.exceptions import ValidationError


def validate_timezone(value):
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"'{value}' is not a known IANA timezone (e.g. Europe/Berlin).", code="timezone")
