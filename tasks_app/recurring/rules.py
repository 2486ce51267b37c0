"""RFC 5545 RRULE expansion in a template's local wall-clock time (pure: no database).

The rule is expanded by python-dateutil with a *naive* local dtstart, so "every day at 09:00" stays
09:00 local on both sides of a daylight-saving change. Each local occurrence is then placed in the
template's zone with zoneinfo (fold=0) and converted to UTC:

- a nonexistent local time (spring-forward gap, e.g. 02:30 in Berlin on the last Sunday of March)
  is shifted forward by the gap length (02:30 -> 03:30 CEST), as RFC 5545 section 3.3.5 says;
- an ambiguous local time (fall-back, e.g. 02:30 on the last Sunday of October) is the first of
  the two instants (CEST), as RFC 5545 says;
- except dtstart itself: it is the first instance (RFC 5545 section 3.8.5.3), so the instant given,
  with its offset, is kept (a dtstart of 02:30+01:00 on fall-back night stays 01:30Z, not 00:30Z).
If the shift makes two occurrences land on the same instant (an HOURLY rule in a gap), one is kept.

Resuming (the cost of a check does not grow with the template's age). dateutil always iterates from
dtstart, so `iter_from(start)` does not hand it the template's rule as is: it rebuilds the rule with
dtstart moved to an *anchor*, the start of the last iteration period at or before `start`
(minus the two-day margin below) that the original iteration visits — dtstart's year / month /
week (from WKST) / day / hour plus a whole number k of INTERVALs, computed arithmetically:

- every BYxxx default dateutil derives from dtstart (BYMONTH/BYMONTHDAY for YEARLY, BYMONTHDAY for
  MONTHLY, BYDAY for WEEKLY, BYHOUR, BYMINUTE, BYSECOND) is spelled out from the real dtstart, so
  the anchored rule selects the same times in every period; an anchor that starts its period keeps
  BYSETPOS (applied to a whole period) and the INTERVAL alignment (WEEKLY;INTERVAL=2 stays on
  dtstart's weeks) exact;
- COUNT counts from dtstart: the anchored rule gets COUNT minus the occurrences in the k skipped
  periods, known arithmetically only when each period holds exactly one occurrence (no BYxxx part,
  and MONTHLY on a day <= 28, YEARLY not on Feb 29). Any other rule with COUNT is expanded from
  dtstart: its cost is bounded by COUNT, not by age;
- a rule with a part outside FREQ, INTERVAL, COUNT, UNTIL, WKST, BYSETPOS, BYMONTH, BYWEEKNO,
  BYYEARDAY, BYMONTHDAY, BYDAY, BYHOUR, BYMINUTE, BYSECOND (e.g. dateutil's BYEASTER or BYWEEKDAY)
  is expanded from dtstart as well.
The anchored expansion yields exactly the original's local occurrences at or after the anchor
(tasks_app/tests/test_recurrence_resume.py checks it against full expansion over random rules).

Stepping (a recurring tick expands thousands of rules). A plain rule, FREQ/INTERVAL/COUNT/WKST and no
BYxxx part, has one occurrence per period on dtstart's own wall time, so its k-th occurrence is dtstart
plus k INTERVALs (k < COUNT, up to UNTIL): `iter_from` computes those (`Schedule.steps`) instead of
building and running an anchored dateutil rule; MONTHLY on a day after the 28th and YEARLY on 29 February
are left to dateutil (their periods do not all hold one). Such a rule's text is parsed once per text
(`_plain_rule`), and its dateutil rrule is built only if something asks for `Schedule.rule`.
test_recurrence_resume.py checks stepping against full expansion too.
"""

import calendar
import functools
import re
import zoneinfo
from datetime import UTC, datetime, time, timedelta
from typing import NamedTuple

from dateutil import rrule as du

FREQ_NAMES = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY")
_UNTIL_RE = re.compile(r"(?i)(^|;)UNTIL=([0-9TZ]+)")
_FORBIDDEN_RE = re.compile(r"(?i)(DTSTART|RDATE|EXDATE|EXRULE|\n|\r)")
_WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
# Parts whose meaning does not depend on dtstart once the defaults dateutil takes from it are spelled out.
_RESUMABLE_PARTS = frozenset(
    ("FREQ", "INTERVAL", "COUNT", "WKST", "BYSETPOS", "BYMONTH", "BYWEEKNO", "BYYEARDAY")
    + ("BYMONTHDAY", "BYDAY", "BYHOUR", "BYMINUTE", "BYSECOND")
)
# Any of these given, dateutil takes no date default (BYMONTH/BYMONTHDAY/BYDAY) from dtstart.
_DATE_PARTS = ("BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY")
# Wall time and UTC differ by at most a day or so (zones that skipped a date): expansion starts this early.
_MARGIN = timedelta(days=2)
_ONE_DAY = timedelta(days=1)


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


class Rule(NamedTuple):
    """A parsed rule: dateutil's rrule over naive local datetimes, and the parameters we read back."""

    rrule: du.rrule | None  # None: a plain rule (_plain_rule), built on demand by make_rrule()
    freq: str  # one of FREQ_NAMES
    interval: int
    count: int | None  # COUNT from the rule string or the template's field
    until: datetime | None  # naive local, from the rule string or the template's field
    parts: dict  # NAME -> VALUE of the rule text (upper case, without UNTIL)
    dtstart: datetime  # naive local: the rrule's own dtstart, which its BYxxx defaults come from
    prototype: du.rrule | None  # a plain rule's parse (_plain_rule), from which make_rrule() builds rrule
    changes: dict  # UNTIL/COUNT given apart from the rule text, applied to the parsed rule

    def make_rrule(self):
        if self.rrule is not None:
            return self.rrule
        return self.prototype.replace(dtstart=self.dtstart, **self.changes)


class Resume(NamedTuple):
    """Where an anchored expansion starts: a period start (naive local), and COUNT left from there."""

    anchor: datetime
    count: int | None  # None: the rule has no COUNT


def _rule_text(rrule):
    text = (rrule or "").strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    if not text:
        raise RecurrenceError("rrule", "An RRULE is required, e.g. FREQ=DAILY;BYHOUR=9.")
    if _FORBIDDEN_RE.search(text):
        raise RecurrenceError("rrule", "Give only the RRULE value (FREQ=...); dtstart and timezone are fields.")
    return text


def _parse(text, start_local):
    """(rrule, FREQ, INTERVAL, COUNT, parts) of one RRULE value (without UNTIL)."""
    try:
        rule = du.rrulestr(text, dtstart=start_local, forceset=False, compatible=False)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise RecurrenceError("rrule", f"Not a valid RFC 5545 RRULE: {exc}".rstrip(": "))
    if not isinstance(rule, du.rrule):
        raise RecurrenceError("rrule", "Give exactly one RRULE.")
    # dateutil accepted it, so it is NAME=VALUE pairs, case-insensitive, the last of a name winning.
    params = dict(pair.split("=", 1) for pair in text.upper().split(";"))
    if params["FREQ"] not in FREQ_NAMES:
        raise RecurrenceError("rrule", "FREQ must be YEARLY, MONTHLY, WEEKLY, DAILY or HOURLY.")
    rule_count = int(params["COUNT"]) if "COUNT" in params else None
    return rule, params["FREQ"], int(params.get("INTERVAL", 1)), rule_count, params


# A plain rule: only these parts, so nothing in it depends on dtstart (dateutil derives the BYxxx defaults from
# dtstart only when the rule is built, and no BYxxx part is there to be checked against it).
_PLAIN_PARTS = frozenset(("FREQ", "INTERVAL", "COUNT", "WKST"))
_PROTOTYPE_START = datetime(2000, 1, 1)
_STEP = {"WEEKLY": timedelta(weeks=1), "DAILY": timedelta(days=1), "HOURLY": timedelta(hours=1)}


@functools.lru_cache(maxsize=512)
def _plain_rule(text):
    """_parse(text) for a plain rule (FREQ, INTERVAL, COUNT, WKST), parsed once per text, with a placeholder
    dtstart: its rrule is a prototype, `prototype.replace(dtstart=...)` the rule with a template's dtstart
    (replace() takes dtstart's defaults afresh from the new dtstart). None for any other text, which _parse
    parses with the template's own dtstart every time: a BYxxx part's meaning (and validity: HOURLY;INTERVAL=5;
    BYHOUR=...) can depend on dtstart. Rule texts repeat across templates ("FREQ=DAILY"), so this saves
    most of the parsing a tick over many templates would do."""
    try:
        parsed = _parse(text, _PROTOTYPE_START)
    except RecurrenceError:
        return None  # the caller's _parse raises it, with the template's dtstart
    return parsed if set(parsed[4]) <= _PLAIN_PARTS else None


def _field_until(until, dtstart, zone):
    if until.tzinfo is None:
        raise RecurrenceError("until", "until must be an aware datetime.")
    if until < dtstart:
        raise RecurrenceError("until", "until must not be before dtstart.")
    return to_local_naive(until, zone)


def build_rule(*, rrule, dtstart, timezone, until=None, count=None):
    """The Rule of a template's fields. dtstart/until are aware datetimes.

    COUNT/UNTIL may be given in the rule string or as the template's fields, not both.
    """
    zone = get_zone(timezone)
    text = _rule_text(rrule)
    if dtstart is None or dtstart.tzinfo is None:
        raise RecurrenceError("dtstart", "dtstart must be an aware datetime.")
    start_local = to_local_naive(dtstart, zone).replace(microsecond=0)
    rule_until = None
    match = _UNTIL_RE.search(text)
    if match:
        rule_until = _parse_until(match.group(2), zone)
        text = _UNTIL_RE.sub(r"\1", text).strip(";").replace(";;", ";")
    plain = _plain_rule(text)
    rule, freq, interval, rule_count, parts = plain if plain is not None else _parse(text, start_local)
    if rule_count and count:
        raise RecurrenceError("count", "COUNT is already in the rule; set it in one place.")
    if rule_until and until:
        raise RecurrenceError("until", "UNTIL is already in the rule; set it in one place.")
    if rule_until and (rule_count or count):
        raise RecurrenceError("rrule", "UNTIL and COUNT must not both be given (RFC 5545).")
    if until is not None:
        rule_until = _field_until(until, dtstart, zone)
    if rule_until is not None and rule_until < start_local:
        raise RecurrenceError("until" if until is not None else "rrule", "UNTIL must not be before dtstart.")
    if count is not None and count < 1:
        raise RecurrenceError("count", "count must be at least 1.")
    changes = {"until": rule_until} if rule_until is not None else {}
    if count:
        changes["count"] = count
    if plain is not None:  # parts: a copy of its own, not the cache's
        return Rule(None, freq, interval, count or rule_count, rule_until, dict(parts), start_local, rule, changes)
    return Rule(
        rule.replace(**changes) if changes else rule,
        freq,
        interval,
        count or rule_count,
        rule_until,
        parts,
        start_local,
        None,
        changes,
    )


_MONTH_MAX_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class Schedule:
    """Occurrences of one rule as UTC instants."""

    def __init__(self, *, rrule, dtstart, timezone, until=None, count=None):
        self.zone = get_zone(timezone)
        parsed = build_rule(rrule=rrule, dtstart=dtstart, timezone=timezone, until=until, count=count)
        self._parsed = parsed
        self.freq, self.interval, self.count, self.until = parsed.freq, parsed.interval, parsed.count, parsed.until
        self.parts = parsed.parts
        # What dateutil expands from. Not always start_local: a dtstart given in the zone itself at a
        # nonexistent wall time (02:30 on spring-forward night) keeps that wall time here.
        self.rule_start = parsed.dtstart
        # The occurrence at dtstart's wall time is dtstart itself, whichever of two ambiguous instants it is.
        self.start_instant = dtstart.astimezone(UTC).replace(microsecond=0)
        self.start_local = to_local_naive(self.start_instant, self.zone)
        self.wkst = _WEEKDAYS[self.parts["WKST"]] if "WKST" in self.parts else calendar.firstweekday()
        self._anchored = None  # (Resume, rrule) of the last anchored expansion
        # The k-th occurrence is dtstart + k INTERVALs: iter_from steps there without dateutil (_stepped).
        self.steps = set(self.parts) <= _PLAIN_PARTS and self._one_per_period()

    @functools.cached_property
    def rule(self):
        """dateutil's rrule over naive local datetimes (built when first needed: a plain rule that only steps
        never needs it)."""
        return self._parsed.make_rrule()

    def check_repeats(self):
        """Refuse a rule whose BYMONTHDAY never falls in its BYMONTH (FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30):
        dateutil would search up to year 9999 for the next occurrence on every check (4–9 s per call measured
        here; bounding it with UNTIL does not help, as dateutil checks UNTIL only on a match). Called where a
        template is written. Other never-matching combinations (e.g. a BYSETPOS past every set) are not
        detected."""
        days = [int(d) for d in self.parts.get("BYMONTHDAY", "").split(",") if d]
        months = [int(m) for m in self.parts.get("BYMONTH", "").split(",") if m] or range(1, 13)
        if days and not any(abs(day) <= _MONTH_MAX_DAYS[month - 1] for day in days for month in months):
            raise RecurrenceError("rrule", "BYMONTHDAY never falls in the months of this rule: it never occurs.")
        return self

    @classmethod
    def for_template(cls, template):
        return cls(
            rrule=template.rrule,
            dtstart=template.dtstart,
            timezone=template.timezone,
            until=template.until,
            count=template.count,
        )

    def local(self, instant):
        return instant.astimezone(self.zone)

    def _period_anchor(self, target):
        """(start of the last iteration period at or before `target`, periods before it) or None when
        that is dtstart's own period. Periods are dtstart's year/month/week/day/hour + k * INTERVAL."""
        start, n = self.rule_start, self.interval
        if self.freq == "YEARLY":
            k = (target.year - start.year) // n
            anchor = datetime(start.year + k * n, 1, 1) if k >= 1 else None
        elif self.freq == "MONTHLY":
            k = ((target.year - start.year) * 12 + target.month - start.month) // n
            year, month = divmod(start.year * 12 + start.month - 1 + k * n, 12)
            anchor = datetime(year, month + 1, 1) if k >= 1 else None
        elif self.freq == "WEEKLY":
            week = datetime.combine(start.date() - timedelta(days=(start.weekday() - self.wkst) % 7), time())
            k = (target - week).days // 7 // n
            anchor = week + timedelta(weeks=k * n)
        elif self.freq == "DAILY":
            day = datetime.combine(start.date(), time())
            k = (target - day).days // n
            anchor = day + timedelta(days=k * n)
        else:  # HOURLY
            hour = start.replace(minute=0, second=0)
            k = (target - hour) // timedelta(hours=1) // n
            anchor = hour + timedelta(hours=k * n)
        return (anchor, k) if k >= 1 else None

    def _one_per_period(self):
        """Whether every period holds exactly one occurrence (so k skipped periods are k occurrences)."""
        if any(part.startswith("BY") for part in self.parts):
            return False
        if self.freq == "MONTHLY":
            return self.rule_start.day <= 28
        if self.freq == "YEARLY":
            return (self.rule_start.month, self.rule_start.day) != (2, 29)
        return True

    def resume_point(self, target):
        """Where an expansion that must reach `target` (naive local) can start instead of dtstart.

        None: expand from dtstart (target in dtstart's own period, a part we do not resume, or a COUNT
        whose skipped occurrences are not known arithmetically). A Resume with count 0: the rule's
        COUNT ends before the anchor.
        """
        if not set(self.parts) <= _RESUMABLE_PARTS:
            return None
        if self.count is not None and not self._one_per_period():
            return None
        found = self._period_anchor(target)
        if found is None:
            return None
        anchor, skipped = found
        return Resume(anchor, None if self.count is None else max(self.count - skipped, 0))

    def _anchored_rule(self, resume):
        """The rule from `resume.anchor`, dtstart's defaults spelled out (dateutil's public replace())."""
        if self._anchored is not None and self._anchored[0] == resume:
            return self._anchored[1]
        start, parts, changes = self.rule_start, self.parts, {"dtstart": resume.anchor}
        if not any(part in parts for part in _DATE_PARTS):
            if self.freq == "YEARLY":
                if "BYMONTH" not in parts:
                    changes["bymonth"] = start.month
                changes["bymonthday"] = start.day
            elif self.freq == "MONTHLY":
                changes["bymonthday"] = start.day
            elif self.freq == "WEEKLY":
                changes["byweekday"] = start.weekday()
        if "BYHOUR" not in parts and self.freq != "HOURLY":
            changes["byhour"] = start.hour
        if "BYMINUTE" not in parts:
            changes["byminute"] = start.minute
        if "BYSECOND" not in parts:
            changes["bysecond"] = start.second
        if resume.count is not None:
            changes["count"] = resume.count
        rule = self.rule.replace(**changes)
        self._anchored = (resume, rule)
        return rule

    def _stepped(self, target):
        """What rule.xafter(target, inc=True) yields for a rule whose k-th occurrence (k from 0, k < COUNT, up to
        UNTIL) is dtstart plus k INTERVALs, as wall-clock arithmetic (`steps`: no BYxxx part, so dateutil takes
        the month, day, weekday, hour, minute and second from dtstart, and every period holds one occurrence):
        computed, without dateutil. It stops where datetime does, at the end of year 9999, as dateutil does."""
        start, count, until = self.rule_start, self.count, self.until
        if self.freq in ("MONTHLY", "YEARLY"):
            months = self.interval * (12 if self.freq == "YEARLY" else 1)
            first = start.year * 12 + start.month - 1

            def occurrence(k):  # the day exists in every month (<= 28) or year (not 29 February): _one_per_period
                year, month = divmod(first + k * months, 12)
                return start.replace(year=year, month=month + 1)

            k = max(0, (target.year * 12 + target.month - 1 - first) // months)
        else:
            step = _STEP[self.freq] * self.interval

            def occurrence(k):
                return start + k * step

            k = max(0, -((start - target) // step))  # the first k with start + k * step >= target
        while count is None or k < count:
            try:
                local = occurrence(k)
            except (OverflowError, ValueError):  # past year 9999
                return
            if until is not None and local > until:
                return
            if local >= target:
                yield local
            k += 1

    def _local_source(self, start, resume):
        """Local occurrences from a little before `start` (naive, ascending): the rule's own ones."""
        target = to_local_naive(start, self.zone) - _MARGIN
        if resume and self.steps:
            # Tighter, for a source this cheap to enter anywhere: a UTC offset is under a day either way, so a
            # wall time more than a day before `start` (as a naive UTC time) is an instant before `start`.
            return self._stepped(max(target, start.astimezone(UTC).replace(tzinfo=None) - _ONE_DAY))
        point = self.resume_point(target) if resume else None
        if point is None:
            return self.rule.xafter(target, inc=True)
        if point.count == 0:
            return iter(())
        return self._anchored_rule(point).xafter(target, inc=True)

    def iter_from(self, start=None, *, inclusive=True, resume=True):
        """UTC occurrences at or after `start` (an aware datetime; None = from dtstart), ascending.

        resume=False expands from dtstart (what the property test compares the default against).
        """
        source = iter(self.rule) if start is None else self._local_source(start, resume)
        previous = None
        for local in source:
            instant = self.start_instant if local == self.start_local else to_utc(local, self.zone)
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
        return self.freq, self.interval
