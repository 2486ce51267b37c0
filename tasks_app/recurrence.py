"""RFC 5545 RRULE expansion in a template's local wall-clock time (pure: no database).

The rule is expanded by python-dateutil with a *naive* local dtstart, so "every day at 09:00" stays
09:00 local on both sides of a daylight-saving change. Each local occurrence is then placed in the
template's zone with zoneinfo (fold=0) and converted to UTC:

- a nonexistent local time (spring-forward gap, e.g. 02:30 in Berlin on the last Sunday of March)
  is shifted forward by the gap length (02:30 -> 03:30 CEST), as RFC 5545 section 3.3.5 says;
- an ambiguous local time (fall-back, e.g. 02:30 on the last Sunday of October) is the first of
  the two instants (CEST), as RFC 5545 says.
If the shift makes two occurrences land on the same instant (an HOURLY rule in a gap), one is kept.
"""

import re
import zoneinfo
from datetime import UTC, datetime, timedelta

from dateutil import rrule as du

ALLOWED_FREQS = {du.YEARLY, du.MONTHLY, du.WEEKLY, du.DAILY, du.HOURLY}
FREQ_NAMES = {du.YEARLY: "YEARLY", du.MONTHLY: "MONTHLY", du.WEEKLY: "WEEKLY", du.DAILY: "DAILY",
              du.HOURLY: "HOURLY"}
_UNTIL_RE = re.compile(r"(?i)(^|;)UNTIL=([0-9TZ]+)")
_FORBIDDEN_RE = re.compile(r"(?i)(DTSTART|RDATE|EXDATE|EXRULE|\n|\r)")


class RecurrenceError(ValueError):
    """Bad schedule input; `field` names the template field it belongs to."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field
        self.message = message


def get_zone(name):
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise RecurrenceError("timezone", f"'{name}' is not a known IANA timezone (e.g. Europe/Berlin).")


def to_local_naive(value, zone):
    return value.astimezone(zone).replace(tzinfo=None)


def to_utc(local_naive, zone):
    """Local wall time -> UTC instant (fold=0: gap shifts forward, ambiguity takes the first)."""
    return local_naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _parse_until(text, zone):
    text = text.upper()
    try:
        if text.endswith("Z"):
            return to_local_naive(datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC), zone)
        if "T" in text:
            return datetime.strptime(text, "%Y%m%dT%H%M%S")
        # A date-only UNTIL includes the whole day.
        return datetime.strptime(text, "%Y%m%d").replace(hour=23, minute=59, second=59)
    except ValueError:
        raise RecurrenceError("rrule", f"UNTIL={text} is not a valid date or date-time.")


def build_rule(*, rrule, dtstart, timezone, until=None, count=None):
    """A dateutil rrule over naive local datetimes. dtstart/until are aware datetimes.

    COUNT/UNTIL may be given in the rule string or as the template's fields, not both.
    """
    zone = get_zone(timezone)
    text = (rrule or "").strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    if not text:
        raise RecurrenceError("rrule", "An RRULE is required, e.g. FREQ=DAILY;BYHOUR=9.")
    if _FORBIDDEN_RE.search(text):
        raise RecurrenceError("rrule", "Give only the RRULE value (FREQ=...); dtstart and timezone are fields.")
    if dtstart is None or dtstart.tzinfo is None:
        raise RecurrenceError("dtstart", "dtstart must be an aware datetime.")
    start_local = to_local_naive(dtstart, zone).replace(microsecond=0)
    rule_until = None
    match = _UNTIL_RE.search(text)
    if match:
        rule_until = _parse_until(match.group(2), zone)
        text = _UNTIL_RE.sub(r"\1", text).strip(";").replace(";;", ";")
    try:
        rule = du.rrulestr(text, dtstart=start_local, forceset=False, compatible=False)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise RecurrenceError("rrule", f"Not a valid RFC 5545 RRULE: {exc}".rstrip(": "))
    if not isinstance(rule, du.rrule):
        raise RecurrenceError("rrule", "Give exactly one RRULE.")
    if rule._freq not in ALLOWED_FREQS:
        raise RecurrenceError("rrule", "FREQ must be YEARLY, MONTHLY, WEEKLY, DAILY or HOURLY.")
    if rule._count and count:
        raise RecurrenceError("count", "COUNT is already in the rule; set it in one place.")
    if rule_until and until:
        raise RecurrenceError("until", "UNTIL is already in the rule; set it in one place.")
    if rule_until and (rule._count or count):
        raise RecurrenceError("rrule", "UNTIL and COUNT must not both be given (RFC 5545).")
    if until is not None:
        if until.tzinfo is None:
            raise RecurrenceError("until", "until must be an aware datetime.")
        if until < dtstart:
            raise RecurrenceError("until", "until must not be before dtstart.")
        rule_until = to_local_naive(until, zone)
    if rule_until is not None and rule_until < start_local:
        raise RecurrenceError("until" if until is not None else "rrule", "UNTIL must not be before dtstart.")
    if count is not None and count < 1:
        raise RecurrenceError("count", "count must be at least 1.")
    changes = {}
    if rule_until is not None:
        changes["until"] = rule_until
    if count:
        changes["count"] = count
    return rule.replace(**changes) if changes else rule


class Schedule:
    """Occurrences of one rule as UTC instants."""

    def __init__(self, *, rrule, dtstart, timezone, until=None, count=None):
        self.zone = get_zone(timezone)
        self.rule = build_rule(rrule=rrule, dtstart=dtstart, timezone=timezone, until=until, count=count)

    @classmethod
    def for_template(cls, template):
        return cls(rrule=template.rrule, dtstart=template.dtstart, timezone=template.timezone,
                   until=template.until, count=template.count)

    def local(self, instant):
        return instant.astimezone(self.zone)

    def iter_from(self, start=None, *, inclusive=True):
        """UTC occurrences at or after `start` (an aware datetime; None = from dtstart), ascending."""
        rule = self.rule
        if start is None:
            source = iter(rule)
        else:
            # Wall time and UTC differ by at most a day or so (zones that skipped a date): start early.
            source = rule.xafter(to_local_naive(start, self.zone) - timedelta(days=2), inc=True)
        previous = None
        for local in source:
            instant = to_utc(local, self.zone)
            if instant == previous:
                continue
            previous = instant
            if start is not None and (instant < start or (instant == start and not inclusive)):
                continue
            yield instant

    def next_after(self, start, *, inclusive=False):
        return next(self.iter_from(start, inclusive=inclusive), None)

    def take(self, n, start=None, *, inclusive=True):
        out = []
        for instant in self.iter_from(start, inclusive=inclusive):
            if len(out) >= n:
                break
            out.append(instant)
        return out

    def is_occurrence(self, instant):
        return self.next_after(instant, inclusive=True) == instant

    def after_completion_interval(self):
        """(unit, n) of FREQ/INTERVAL, used by the after_completion mode."""
        return FREQ_NAMES[self.rule._freq], self.rule._interval
