"""The filter backends of the API: django-filter, skipped when a request names none of the view's filters.

Binding a FilterSet deep-copies its filters and builds a form on every request (about a third of a
task list's Python time in bench/api_tasks.py); with no filter parameter it filters nothing, so skip it.
"""

import django_filters
from django import forms
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import filters
from rest_framework.exceptions import ErrorDetail, ValidationError


class FilterBackend(DjangoFilterBackend):
    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None:
            return queryset
        if not any(name in request.query_params for name in filterset_class.base_filters):
            return queryset
        return super().filter_queryset(request, queryset, view)


class StrictOrderingFilter(filters.OrderingFilter):
    """OrderingFilter that refuses what it cannot order by (DRF drops unknown fields silently): a 400 on
    `ordering`, and the schema lists the accepted values (an array, comma-separated)."""

    def _allowed(self, queryset, view, request):
        fields = [name for name, _ in self.get_valid_fields(queryset, view, {"request": request})]
        return [*fields, *(f"-{name}" for name in fields)]

    def get_ordering(self, request, queryset, view):
        raw = request.query_params.get(self.ordering_param)
        if raw:
            allowed = set(self._allowed(queryset, view, request))
            terms = [term.strip() for term in raw.split(",")]
            unknown = [term for term in terms if term not in allowed]
            if unknown:
                raise ValidationError(
                    {
                        self.ordering_param: [
                            ErrorDetail(
                                f"Cannot order by {', '.join(repr(t) for t in unknown)}. "
                                f"Allowed: {', '.join(sorted(allowed))}.",
                                code="invalid_ordering",
                            )
                        ]
                    }
                )
        return super().get_ordering(request, queryset, view)

    def get_schema_operation_parameters(self, view):
        fields = [f for f in getattr(view, "ordering_fields", None) or [] if isinstance(f, str)]
        if not fields:
            return super().get_schema_operation_parameters(view)
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": "Sort by these fields, comma-separated; a leading '-' sorts descending.",
                "style": "form",
                "explode": False,
                "schema": {
                    "type": "array",
                    "items": {"type": "string", "enum": [*fields, *(f"-{f}" for f in fields)]},
                },
            }
        ]


class StrictBooleanField(forms.Field):
    """`true` or `false` (any case), nothing else: django-filter's BooleanFilter reads any other value (`null`,
    `abc`) as "no filter" and answers 200, although the schema says boolean."""

    widget = forms.TextInput

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).lower()
        if text in ("true", "false"):
            return text == "true"
        raise forms.ValidationError("true or false.", code="invalid")


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField
