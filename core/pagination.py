"""The one pagination class of the API: page numbers (default) or keyset cursors, and the list ETag.

Mode: a request with `cursor=` or `pagination=cursor` pages by cursor; any other request pages by number
exactly as before (`page`, `page_size`, `count`), so existing clients keep working unchanged.

Cursor pages: `{"next", "previous", "results"}` and an RFC 8288 `Link` header (`rel="next"`,
`rel="prev"`). The cursor is opaque (URL-safe base64 of the boundary row's ordering values); the next
page is "rows after the last row of this one" in the list's own ordering (ties broken by id), so rows
inserted meanwhile never shift a page or repeat a row, and no COUNT is run. A NULL in an ordering field
sorts last in both directions in cursor mode.

List ETag (a hash with the user and the full query string): in page-number mode, one aggregate query over
the filtered queryset before any page is read (COUNT and MAX(updated_at) when the model has it; else a
hash of every column of the matching rows), and the page reuses that COUNT instead of running its own; in
cursor mode, a hash of the page's own rows (every selected column) and links, so the page costs one query
either way. `If-None-Match` equal to it → 304 with nothing serialized.
"""

import base64
import binascii
import hashlib
import json
from datetime import datetime

from django.core.paginator import InvalidPage
from django.core.paginator import Paginator as DjangoPaginator
from django.db import connections
from django.db.models import Count, F, Max, Q
from django.db.models.query import FlatValuesListIterable, ValuesIterable, ValuesListIterable
from django.utils.dateparse import parse_datetime
from rest_framework import pagination
from rest_framework.exceptions import ErrorDetail, NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from core import fastpath
from core.conditional import NotModified, etag_matches

CURSOR_PARAM = "cursor"
MODE_PARAM = "pagination"


class _KnownCountPaginator(DjangoPaginator):
    def __init__(self, *args, known_count=None, **kwargs):
        super().__init__(*args, **kwargs)
        if known_count is not None:
            self.__dict__["count"] = known_count  # pre-fills the cached_property


def fingerprint_material(row, names):
    """The aggregate row (COUNT, MAX(updated_at), then the view's extras) as ETag material: the same from the ORM
    and from the raw row core/fastpath.py reads (SQLite returns the datetime naive, or as text)."""
    values = dict(zip(names, row, strict=True))
    latest = fastpath.as_aware_datetime(values["m"])
    return [values["n"], latest.isoformat() if latest else None, *(values[k] for k in sorted(names[2:]))]


def list_etag(label, user_pk, full_path, material):
    key = json.dumps([label, user_pk, full_path, *material], default=str)
    return '"l' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


def list_fingerprint(queryset, *, view=None, fast_path=None):
    """(material, count or None): one query over the filtered queryset, nothing serialized.

    `fast_path` (a dict), when given, receives the compiled aggregate query for core/fastpath.py."""
    fast_path = {} if fast_path is None else fast_path
    qs = queryset.order_by()
    qs.query.select_related = False  # its joins add nothing to a COUNT and a MAX (and cost planning time)
    model = qs.model
    columns = getattr(view, "list_etag_columns", None)
    field_names = {f.name for f in model._meta.concrete_fields}
    count = None
    if columns is None and "updated_at" in field_names:
        # A view may add aggregates over what its rows show besides their own columns (list_etag_extra).
        extra = view.list_etag_extra() if hasattr(view, "list_etag_extra") else {}
        compiled = []

        def capture(execute, sql, params, many, context):
            compiled[:] = [sql, params]
            return execute(sql, params, many, context)

        with connections[qs.db].execute_wrapper(capture):
            agg = qs.aggregate(n=Count("pk"), m=Max("updated_at"), **extra)
        count = agg["n"]
        names = ["n", "m", *extra]  # the SELECT's column order
        material = fingerprint_material([agg[name] for name in names], names)
        if compiled:
            sql, params = compiled
            fast_path.update(sql=sql, params=params, names=names)
    else:
        columns = columns or [f.attname for f in model._meta.concrete_fields]
        h = hashlib.sha256()
        n = 0
        for row in qs.values_list(*columns).order_by("pk").iterator(chunk_size=2000):
            h.update(repr(row).encode())
            n += 1
        count = None if qs.query.annotations and not columns else n
        material = [n, h.hexdigest()]
    return material, count


MODES = ("cursor", "page")


def check_page_size(request, param, maximum):
    """DRF falls back to the default on a bad page_size; a value the schema refuses is a 400 here."""
    raw = request.query_params.get(param)
    if raw is not None and not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= maximum):
        raise ValidationError({param: [ErrorDetail(f"An integer from 1 to {maximum}.", code="invalid_page_size")]})


def invalid_cursor():
    """A cursor this API did not issue (or garbled): its own code, since no schema can say which strings are
    cursors."""
    return ValidationError({CURSOR_PARAM: [ErrorDetail("Invalid cursor.", code="invalid_cursor")]})


class BoundedPageSizeMixin:
    """On a DRF pagination class: `page_size` from 1 to `max_page_size`, refused with a 400 otherwise (DRF falls
    back to the default), and stated so in the schema."""

    def get_page_size(self, request):
        check_page_size(request, self.page_size_query_param, self.max_page_size)
        return super().get_page_size(request)

    def get_schema_operation_parameters(self, view):
        params = super().get_schema_operation_parameters(view)
        for param in params:
            if param["name"] == self.page_size_query_param:
                param["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
        return params


class PageNumberPagination(BoundedPageSizeMixin, pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200
    etag = None

    # --- dispatch between page numbers and cursors ----------------------------------------------------
    def _cursor_mode(self, request):
        mode = request.query_params.get(MODE_PARAM)
        if mode is not None and mode not in MODES:
            raise ValidationError({MODE_PARAM: [ErrorDetail(f"One of: {', '.join(MODES)}.", code="invalid_choice")]})
        return CURSOR_PARAM in request.query_params or mode == "cursor"

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.cursor_mode = self._cursor_mode(request)
        # Refuse a bad page size before a conditional GET can answer 304 from the list's fingerprint (get_page_size
        # checks it again later: a string test).
        check_page_size(request, self.page_size_query_param, self.max_page_size)
        if self.cursor_mode:
            page = request.query_params.get(self.page_query_param)
            if page is not None and not (page.isascii() and page.isdigit() and int(page) >= 1):
                raise NotFound("Invalid page.", code="invalid_page")  # as page mode answers it
            rows = self._cursor_paginate(queryset, request)
            self._check_cursor_etag(queryset, rows, request, view)
            return rows
        count = self._check_etag(queryset, request, view)
        self.django_paginator_class = lambda qs, size: _KnownCountPaginator(qs, size, known_count=count)
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound as exc:  # DRF's "Invalid page." carries the generic not_found code
            raise NotFound(str(exc.detail), code="invalid_page") from exc

    def get_paginated_response(self, data):
        if self.cursor_mode:
            response = Response({"next": self.next_url, "previous": self.previous_url, "results": data})
            links = [f'<{url}>; rel="{rel}"' for url, rel in ((self.next_url, "next"), (self.previous_url, "prev"))]
            links = [link for link, url in zip(links, (self.next_url, self.previous_url), strict=True) if url]
        else:
            response = super().get_paginated_response(data)
            links = [
                f'<{url}>; rel="{rel}"'
                for url, rel in ((self.get_next_link(), "next"), (self.get_previous_link(), "prev"))
                if url
            ]
        if links:
            response["Link"] = ", ".join(links)
        if self.etag:
            response["ETag"] = self.etag
        return response

    # --- list ETag ---------------------------------------------------------------------------------------
    def _set_etag(self, queryset, request, material):
        user = getattr(request, "user", None)
        self.etag = list_etag(queryset.model._meta.label, getattr(user, "pk", None), request.get_full_path(), material)
        if request.method in ("GET", "HEAD") and etag_matches(request.headers.get("If-None-Match"), self.etag):
            raise NotModified(self.etag)

    def _check_etag(self, queryset, request, view):
        if not hasattr(queryset, "query"):  # a plain list: nothing cheap to fingerprint
            return None
        compiled = {}
        # A view may fingerprint the queryset its page is read from (before values(): fewer joins to plan).
        fingerprinted = getattr(view, "fingerprint_queryset", None)
        fingerprinted = queryset if fingerprinted is None else fingerprinted
        material, count = list_fingerprint(fingerprinted, view=view, fast_path=compiled)
        # RFC 9110 §13.2.1: a request that would fail without its preconditions ignores them. So a page that does
        # not exist is refused before If-None-Match can answer 304 (and before the fast path remembers the URL).
        self._check_page_number(queryset, request, count)
        if compiled and isinstance(view, fastpath.ListFastPathMixin) and not self._time_relative(request, view):
            label, user_pk, path, names = (
                queryset.model._meta.label,
                request.user.pk,
                request.get_full_path(),
                compiled["names"],
            )
            fastpath.remember(
                request,
                sql=compiled["sql"],
                params=compiled["params"],
                etag_key=lambda row: list_etag(label, user_pk, path, fingerprint_material(row, names)),
            )
        self._set_etag(queryset, request, material)
        return count

    def _check_page_number(self, queryset, request, count):
        """Raise what DRF's paginate_queryset would (404 `invalid_page`) for a page that is not a number or out of
        range, using the count the fingerprint already has."""
        page = request.query_params.get(self.page_query_param) or 1
        page_size = self.get_page_size(request)
        if page in self.last_page_strings or not page_size or count is None:
            return
        try:
            _KnownCountPaginator(queryset, page_size, known_count=count).validate_number(page)
        except InvalidPage as exc:
            raise NotFound("Invalid page.", code="invalid_page") from exc

    @staticmethod
    def _time_relative(request, view):
        """Whether the list's filters read the clock (its fingerprint SQL then holds this moment)."""
        return bool(set(getattr(view, "list_etag_time_relative", ())) & set(request.query_params))

    def _check_cursor_etag(self, queryset, rows, request, view):
        """A cursor page's ETag covers exactly its rows (every selected column) and its links: no extra query."""
        if queryset._fields:
            material = [repr(rows)]
        else:
            extra = getattr(view, "list_etag_columns", None) or ()
            names = [f.attname for f in queryset.model._meta.concrete_fields] + [c for c in extra if c != "id"]
            material = [repr([[getattr(row, n, None) for n in names] for row in rows])]
        self._set_etag(queryset, request, [*material, self.next_url, self.previous_url])

    # --- cursor pages --------------------------------------------------------------------------------------
    def _ordering(self, queryset):
        order = [str(o) for o in (queryset.query.order_by or queryset.model._meta.ordering or []) if isinstance(o, str)]
        if not order:
            order = ["-pk"]
        pk_name = queryset.model._meta.pk.name
        fields = []
        for item in order:
            desc = item.startswith("-")
            name = item.lstrip("-")
            name = pk_name if name == "pk" else name
            if "__" in name:
                raise ValidationError({CURSOR_PARAM: ["Cursor pagination is not available for this ordering."]})
            fields.append((name, desc))
            if name in (pk_name, "id"):
                break
        else:
            fields.append((pk_name, fields[0][1] if fields else True))
        return fields

    def _decode(self, token):
        try:
            padded = token + "=" * (-len(token) % 4)
            payload = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
            values, direction = payload["v"], payload["d"]
            if direction not in ("n", "p") or not isinstance(values, list):
                raise ValueError
            return values, direction
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
            raise invalid_cursor() from None

    def _encode(self, values, direction):
        raw = json.dumps({"v": values, "d": direction}, default=str, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _row_values(self, queryset, row, names):
        it = queryset._iterable_class
        if it is ValuesListIterable:
            index = {name: i for i, name in enumerate(queryset._fields)}
            return [row[index[n]] for n in names]
        if it is ValuesIterable:
            return [row[n] for n in names]
        if it is FlatValuesListIterable:
            return [row]
        return [getattr(row, n) for n in names]

    def _parse_value(self, model, name, value):
        if value is None:
            return None
        field = model._meta.get_field(name)
        if field.get_internal_type() in ("DateTimeField",):
            parsed = parse_datetime(value) if isinstance(value, str) else None
            if parsed is None:
                raise invalid_cursor()
            return parsed
        try:
            return field.to_python(value)
        except Exception:
            raise invalid_cursor() from None

    def _cursor_paginate(self, queryset, request):
        page_size = self.get_page_size(request)
        fields = self._ordering(queryset)
        names = [n for n, _ in fields]
        for name in names:
            if queryset._fields and name not in queryset._fields:
                raise ValidationError({CURSOR_PARAM: ["Cursor pagination is not available for this ordering."]})
        token = request.query_params.get(CURSOR_PARAM)
        direction, boundary = "n", None
        if token:
            values, direction = self._decode(token)
            if len(values) != len(fields):
                raise invalid_cursor()
            boundary = [self._parse_value(queryset.model, n, v) for n, v in zip(names, values, strict=True)]
        forward = direction == "n"
        # NULLs last in the page's order; a backwards page reads the reversed order, then flips it.
        order = []
        for name, desc in fields:
            expr = F(name)
            if forward:
                order.append(expr.desc(nulls_last=True) if desc else expr.asc(nulls_last=True))
            else:
                order.append(expr.asc(nulls_first=True) if desc else expr.desc(nulls_first=True))
        qs = queryset.order_by(*order)
        if boundary is not None:
            qs = qs.filter(self._beyond(fields, boundary, forward))
        rows = list(qs[: page_size + 1])
        has_more = len(rows) > page_size
        rows = rows[:page_size]
        if not forward:
            rows.reverse()
        first = self._row_values(queryset, rows[0], names) if rows else None
        last = self._row_values(queryset, rows[-1], names) if rows else None
        url = request.build_absolute_uri()
        url = remove_query_param(url, MODE_PARAM)
        has_next = has_more if forward else boundary is not None
        has_prev = (boundary is not None) if forward else has_more
        self.next_url = replace_query_param(url, CURSOR_PARAM, self._encode(last, "n")) if has_next and last else None
        self.previous_url = (
            replace_query_param(url, CURSOR_PARAM, self._encode(first, "p")) if has_prev and first else None
        )
        if not rows and boundary is not None:
            # An empty page after the boundary: offer the way back from where the client stood.
            values = [v.isoformat() if isinstance(v, datetime) else v for v in boundary]
            if forward:
                self.previous_url = replace_query_param(url, CURSOR_PARAM, self._encode(values, "p"))
            else:
                self.next_url = replace_query_param(url, CURSOR_PARAM, self._encode(values, "n"))
        self.page = None
        return rows

    @staticmethod
    def _beyond(fields, boundary, forward):
        """Rows strictly after `boundary` in the page's order (forward), or strictly before it (backwards).

        Lexicographic over the ordering fields; NULL sorts after every value (forward order is NULLS LAST).
        """
        condition = Q(pk__in=[])
        equal = Q()
        for (name, desc), value in zip(fields, boundary, strict=True):
            if forward:
                if value is None:
                    step = Q(pk__in=[])  # nothing sorts after NULL
                else:
                    step = Q(**{f"{name}__{'lt' if desc else 'gt'}": value}) | Q(**{f"{name}__isnull": True})
            else:
                if value is None:
                    step = Q(**{f"{name}__isnull": False})
                else:
                    step = Q(**{f"{name}__{'gt' if desc else 'lt'}": value})
            condition |= equal & step
            equal &= Q(**{f"{name}__isnull": True}) if value is None else Q(**{name: value})
        return condition

    # --- schema ------------------------------------------------------------------------------------------
    def get_schema_operation_parameters(self, view):
        params = super().get_schema_operation_parameters(view)
        for param in params:
            if param["name"] == self.page_query_param:
                param["schema"] = {"type": "integer", "minimum": 1}
        params += [
            {
                "name": CURSOR_PARAM,
                "required": False,
                "in": "query",
                "description": "Opaque cursor from a previous page's next/previous link (cursor pagination).",
                "schema": {"type": "string"},
            },
            {
                "name": MODE_PARAM,
                "required": False,
                "in": "query",
                "description": "`cursor` starts cursor pagination (no count; next/previous cursors); `page` (the "
                "default) pages by number.",
                "schema": {"type": "string", "enum": list(MODES)},
            },
        ]
        return params

    def get_paginated_response_schema(self, schema):
        out = super().get_paginated_response_schema(schema)
        out["required"] = ["results"]
        out["properties"]["count"]["description"] = "Page-number mode only."
        return out
