"""Export columns and the streaming CSV / XLSX writers (memory stays flat: rows are never all held).

Datetimes are formatted and formulas escaped by the database, in the SELECT: Python then hands the
fetched tuples straight to the csv module, which keeps a CSV export within reach of COPY's speed.

Formula injection: a spreadsheet opening a CSV runs a cell that starts with = + - @ TAB or CR, so in CSV
such text gets a leading ' (OWASP's advice; the apostrophe is then part of the value a program reads).
XLSX has cell types: such text is written unescaped as a typed string cell (t="s") with the quotePrefix
style, so a spreadsheet shows exactly the text and evaluates nothing.
"""

import csv
import io
import uuid
from itertools import islice

from django.db import connection
from django.db.models import CharField, F, Func
from django.db.models.expressions import RawSQL
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
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
    "parent": "parent_id",
    "labels": None,  # label names, comma-separated (a correlated subquery, see _list_subquery)
    "blockers": None,  # ids of the tasks that block this one, space-separated
}
DEFAULT_FIELDS = [
    "id",
    "project",
    "title",
    "status",
    "priority",
    "assignee",
    "due_at",
    "completed_at",
    "created_at",
    "parent",
    "labels",
    "blockers",
]
# Free text (usernames may start with @ + -); status values are fixed choices and need no escaping.
TEXT_FIELDS = {"project_name", "title", "description", "assignee", "created_by", "labels"}
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
        return self.as_sql(
            compiler, connection, **extra, template="(replace(datetime(%(expressions)s), ' ', 'T') || '+00:00')"
        )


class FormulaEscaped(Func):
    """The text with a leading ' when it starts with a formula character (same SQL on PostgreSQL and SQLite)."""

    output_field = CharField()
    prefixes = ", ".join("'" + c + "'" for c in FORMULA_PREFIXES)
    template = (
        "CASE WHEN substr(%(expressions)s, 1, 1) IN (" + prefixes + ") "
        "THEN '''' || %(expressions)s ELSE %(expressions)s END"
    )


_LIST_SQL = {
    "labels": (
        "SELECT l.name AS v FROM tasks_app_tasklabel tl JOIN tasks_app_label l ON l.id = tl.label_id"
        " WHERE tl.task_id = tasks_app_task.id ORDER BY l.name",
        ", ",
    ),
    "blockers": (
        "SELECT r.source_id AS v FROM tasks_app_taskrelation r"
        " WHERE r.target_id = tasks_app_task.id AND r.type = 'blocks' ORDER BY r.source_id",
        " ",
    ),
}


def _list_subquery(name):
    """A task's labels or blockers as one text cell, aggregated in the export's own SELECT."""
    inner, sep = _LIST_SQL[name]
    if connection.vendor == "postgresql":
        sql = f"(SELECT coalesce(string_agg(s.v::text, '{sep}'), '') FROM ({inner}) s)"
    else:
        sql = f"(SELECT coalesce(group_concat(s.v, '{sep}'), '') FROM ({inner}) s)"
    return RawSQL(sql, [], output_field=CharField())


def export_columns(fields, *, escape_formulas=True):
    """{alias: expression} selecting the fields ready to write (aliases keep the order of `fields`).
    `escape_formulas`: the CSV escape (a leading '); XLSX writes such text as typed text cells instead."""
    columns = {}
    for name in fields:
        path = EXPORT_FIELDS[name]
        if path is None:
            expression = _list_subquery(name)
            escaped = name in TEXT_FIELDS and escape_formulas
            columns[f"out_{name}"] = FormulaEscaped(expression) if escaped else expression
        elif name in DATETIME_FIELDS:
            columns[f"out_{name}"] = IsoUtc(F(path))
        elif name in TEXT_FIELDS and escape_formulas:
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


def _export_select(queryset):
    """(sql, params) of a values_list queryset selecting only its own columns, in order: the compiled
    SELECT may carry extra ones (DISTINCT adds its ORDER BY column), which Django's iterator drops but a
    raw cursor or COPY would not. A plain projection of a subquery keeps the subquery's row order."""
    sql, params = queryset.query.sql_with_params()
    outer = ", ".join(connection.ops.quote_name(name) for name in queryset._fields)
    return f"SELECT {outer} FROM ({sql}) AS export_rows", params


def row_batches(queryset, *, size, ints_as_text=True):
    """The queryset's rows (a values_list) as lists of tuples, `size` rows per database fetch.

    On PostgreSQL: a server-side cursor (WITH HOLD, as Django's own iterator uses outside a transaction)
    read with fetchmany(size); integers stay text (no int() and str() per cell: the csv module writes
    them back as text anyway), every other column already is text (export_columns formats in SQL). Elsewhere:
    Django's chunked iterator."""
    if connection.vendor != "postgresql" or connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS"):
        # Behind PgBouncer in transaction pooling a WITH HOLD cursor cannot outlive its transaction.
        yield from _batches(queryset.iterator(chunk_size=size), size)
        return
    from psycopg.types.string import TextLoader

    sql, params = _export_select(queryset)
    connection.ensure_connection()
    with connection.connection.cursor(name=f"export_{uuid.uuid4().hex[:12]}", withhold=True) as cur:
        if ints_as_text:  # CSV writes them back as text anyway; XLSX keeps numbers typed
            for name in ("int2", "int4", "int8"):
                cur.adapters.register_loader(name, TextLoader)
        cur.itersize = size
        cur.execute(sql, params)
        while batch := cur.fetchmany(size):
            yield batch


def _slices(batches, step):
    """The fetched rows again, in pieces of exactly `step` rows (the last one shorter), so progress is
    reported every `step` rows whatever the fetch size."""
    pending = []
    for batch in batches:
        if pending:
            batch = pending + batch
        full = len(batch) - len(batch) % step
        for i in range(0, full, step):
            yield batch[i : i + step]
        pending = batch[full:]
    if pending:
        yield pending


def copy_csv(path, *, fields, queryset):
    """PostgreSQL: the CSV body straight from `COPY (the export's SELECT) TO STDOUT (FORMAT csv)`, in the
    blocks the server sends (memory stays flat). Cells are the same text as write_csv's (the SELECT
    formats datetimes and escapes formulas); COPY ends lines with LF where the csv module writes CRLF, and
    quotes an empty string ("") to tell it from NULL (empty). Returns the row count the server reports.

    No progress while the COPY runs: the connection is busy with it until the last block (a query on it
    then blocks forever), so the job's progress goes from 0 to 100 at the end."""
    import psycopg

    sql, params = _export_select(queryset)
    connection.ensure_connection()
    raw = connection.connection
    select = psycopg.ClientCursor(raw).mogrify(sql, params)
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(fields)
    with open(path, "wb") as fh, raw.cursor() as cur:
        fh.write(header.getvalue().encode("utf-8"))
        with cur.copy(f"COPY ({select}) TO STDOUT WITH (FORMAT csv)") as copy:
            for block in copy:
                fh.write(block)
        return cur.rowcount


def write_csv(path, *, fields, batches, on_progress, progress_every):
    written = 0
    with open(path, "w", newline="", encoding="utf-8", buffering=1 << 20) as fh:
        writer = csv.writer(fh)
        writer.writerow(fields)
        for batch in _slices(batches, progress_every):
            writer.writerows(batch)
            written += len(batch)
            on_progress(written)
    return written


def _xlsx_text_cell(sheet, value):
    """Formula-like text as a typed string cell with quotePrefix: shown as is, never evaluated."""
    if value and value.startswith(FORMULA_PREFIXES):
        cell = WriteOnlyCell(sheet, value)
        cell.data_type = "s"  # openpyxl made it a formula ("f") because it starts with =
        cell.quotePrefix = True  # stays text when a person edits the cell
        return cell
    return value


def write_xlsx(path, *, fields, batches, on_progress, progress_every):
    text = [i for i, f in enumerate(fields) if f in TEXT_FIELDS]
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("tasks")
    sheet.append(fields)
    written = 0
    for batch in _slices(batches, progress_every):
        for row in batch:
            if text:
                row = list(row)
                for i in text:
                    row[i] = _xlsx_text_cell(sheet, _xlsx_text(row[i]))
            sheet.append(row)
        written += len(batch)
        on_progress(written)
    workbook.save(path)
    return written


WRITERS = {"csv": write_csv, "xlsx": write_xlsx}
ESCAPE_FORMULAS = {"csv": True, "xlsx": False}
