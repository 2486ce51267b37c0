"""Export columns and the streaming CSV / XLSX writers (memory stays flat: rows are never all held).

Datetimes are formatted and formulas escaped by the database, in the SELECT: Python then hands the
fetched tuples straight to the csv module, which keeps a CSV export within reach of COPY's speed.
"""

import csv
from itertools import islice

from django.db.models import CharField, F, Func
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

# Public field name -> ORM path. Users appear by username (never email).
EXPORT_FIELDS = {
    "id": "id",
    "project": "project_id",
    "project_name": "project__name",
    "title": "title",
    "description": "description",
    "status": "status",
    "priority": "priority",
    "assignee": "assignee__username",
    "created_by": "created_by__username",
    "due_at": "due_at",
    "completed_at": "completed_at",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "version": "version",
}
DEFAULT_FIELDS = ["id", "project", "title", "status", "priority", "assignee", "due_at", "completed_at", "created_at"]
# Free text (usernames may start with @ + -); status values are fixed choices and need no escaping.
TEXT_FIELDS = {"project_name", "title", "description", "assignee", "created_by"}
DATETIME_FIELDS = {"due_at", "completed_at", "created_at", "updated_at"}
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection); a leading ' stops it.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class IsoUtc(Func):
    """A stored (UTC) datetime as ISO 8601 text with its offset, to the second: 2026-05-01T07:30:00+00:00."""

    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra):
        template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"')"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, **extra,
                           template="(replace(datetime(%(expressions)s), ' ', 'T') || '+00:00')")


class FormulaEscaped(Func):
    """The text with a leading ' when it starts with a formula character (same SQL on PostgreSQL and SQLite)."""

    output_field = CharField()
    prefixes = ", ".join("'" + c + "'" for c in FORMULA_PREFIXES)
    template = ("CASE WHEN substr(%(expressions)s, 1, 1) IN (" + prefixes + ") "
                "THEN '''' || %(expressions)s ELSE %(expressions)s END")


def export_columns(fields):
    """{alias: expression} selecting the fields ready to write (aliases keep the order of `fields`)."""
    columns = {}
    for name in fields:
        path = EXPORT_FIELDS[name]
        if name in DATETIME_FIELDS:
            columns[f"out_{name}"] = IsoUtc(F(path))
        elif name in TEXT_FIELDS:
            columns[f"out_{name}"] = FormulaEscaped(F(path))
        else:
            columns[f"out_{name}"] = F(path)
    return columns


def _xlsx_text(value):
    # XLSX cannot hold control characters (openpyxl refuses them), so they are dropped; XML reads a
    # CR back as LF, so line ends are written as LF.
    if value is None:
        return None
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return ILLEGAL_CHARACTERS_RE.sub("", value)


def _batches(rows, size):
    while batch := list(islice(rows, size)):
        yield batch


def write_csv(path, *, fields, rows, batch_size, on_progress):
    written = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(fields)
        for batch in _batches(rows, batch_size):
            writer.writerows(batch)
            written += len(batch)
            on_progress(written)
    return written


def write_xlsx(path, *, fields, rows, batch_size, on_progress):
    text = [i for i, f in enumerate(fields) if f in TEXT_FIELDS]
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("tasks")
    sheet.append(fields)
    written = 0
    for batch in _batches(rows, batch_size):
        for row in batch:
            if text:
                row = list(row)
                for i in text:
                    row[i] = _xlsx_text(row[i])
            sheet.append(row)
        written += len(batch)
        on_progress(written)
    workbook.save(path)
    return written


WRITERS = {"csv": write_csv, "xlsx": write_xlsx}
