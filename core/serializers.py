"""Shared serializer behaviour for request bodies."""

from collections.abc import Mapping

from rest_framework import serializers


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def json_type_problem(field, value):
    """An ErrorDetail when a JSON value has the wrong type for a field DRF would coerce ("12" for an integer, 0 for
    a string, "true" for a boolean), else None. The schema states the JSON type, so the API keeps to it."""
    if value is None:
        return None  # the field's allow_null decides
    if isinstance(field, serializers.MultipleChoiceField):
        return None
    if isinstance(field, serializers.ChoiceField):
        if any(value == key and type(value) is type(key) for key in field.choices):
            return None
        return serializers.ErrorDetail(f'"{value}" is not a valid choice.', code="invalid_choice")
    if isinstance(field, (serializers.CharField, serializers.DateTimeField, serializers.DurationField)):
        ok = isinstance(value, str)
    elif isinstance(field, serializers.BooleanField):
        ok = isinstance(value, bool)
    elif isinstance(field, (serializers.IntegerField, serializers.PrimaryKeyRelatedField)):
        ok = _is_int(value)
    elif isinstance(field, (serializers.FloatField, serializers.DecimalField)):
        ok = _is_int(value) or isinstance(value, float)
    else:
        return None
    return None if ok else serializers.ErrorDetail("Incorrect type for this field.", code="incorrect_type")


class StrictFieldsMixin:
    # Refuse keys a write cannot set: a read-only field (`id`, `project` on update) or an unknown one is a 400
    # naming it (code `unexpected_field`), instead of a 200 that silently changed nothing. The schema says the same
    # (additionalProperties: false on every request body, core.exceptions.document_error_responses).
    # (Comments, not a docstring: drf-spectacular would print a docstring on every request body.)

    def to_internal_value(self, data):
        unexpected = {}
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unexpected = {
                str(key): [
                    serializers.ErrorDetail(
                        "This field is read-only or unknown; it cannot be written.", code="unexpected_field"
                    )
                ]
                for key in data
                if key not in writable
            }
        if isinstance(data, Mapping):
            for name, value in data.items():
                field = self.fields.get(name)
                if field is not None and not field.read_only and name not in unexpected:
                    problem = json_type_problem(field, value)
                    if problem:
                        unexpected[str(name)] = [problem]
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if unexpected and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **unexpected}) from exc
            raise
        if unexpected:
            raise serializers.ValidationError(unexpected)
        return value


class InputSerializer(StrictFieldsMixin, serializers.Serializer):
    pass  # the base class of every request-body serializer (no docstring: the schema would show it everywhere)
