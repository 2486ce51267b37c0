"""Export columns and the streaming CSV / XLSX writers (memory stays flat: rows are never all held)."""

import csv
from itertools import islice

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
TEXT_FIELDS = {"project_name", "title", "description", "status", "assignee", "created_by"}
DATETIME_FIELDS = {"due_at", "completed_at", "created_at", "updated_at"}
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection); a leading ' stops it.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_text(value):
    if value and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _text_csv(value):
    return None if value is None else escape_text(value)


def _text_xlsx(value):
    # XLSX cannot hold control characters (openpyxl refuses them), so they are dropped; XML reads a
    # CR back as LF, so line ends are written as LF. Escaping is checked on the original first character.
    if value is None:
        return None
    escaped = escape_text(value)
    if "\r" in escaped:
        escaped = escaped.replace("\r\n", "\n").replace("\r", "\n")
    return ILLEGAL_CHARACTERS_RE.sub("", escaped)


def _datetime(value):
    # Stored UTC and returned aware: isoformat() carries the +00:00 offset.
    return None if value is None else value.isoformat()


def converters(fields, fmt):
    text = _text_xlsx if fmt == "xlsx" else _text_csv
    return [text if f in TEXT_FIELDS else _datetime if f in DATETIME_FIELDS else None for f in fields]


def _batches(rows, size):
    while batch := list(islice(rows, size)):
        yield batch


def _convert(batch, convs):
    idx = [(i, c) for i, c in enumerate(convs) if c is not None]
    out = []
    for row in batch:
        row = list(row)
        for i, c in idx:
            row[i] = c(row[i])
        out.append(row)
    return out


def write_csv(path, *, fields, rows, batch_size, on_progress):
    convs = converters(fields, "csv")
    written = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(fields)
        for batch in _batches(rows, batch_size):
            writer.writerows(_convert(batch, convs))
            written += len(batch)
            on_progress(written)
    return written


def write_xlsx(path, *, fields, rows, batch_size, on_progress):
    convs = converters(fields, "xlsx")
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("tasks")
    sheet.append(fields)
    written = 0
    for batch in _batches(rows, batch_size):
        for row in _convert(batch, convs):
            sheet.append(row)
        written += len(batch)
        on_progress(written)
    workbook.save(path)
    return written


WRITERS = {"csv": write_csv, "xlsx": write_xlsx}
