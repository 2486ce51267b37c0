"""drf-spectacular's AutoSchema, stating constraints the serializers enforce: minItems, uniqueItems, id ranges."""

from django.core.validators import RegexValidator
from drf_spectacular.openapi import AutoSchema as BaseAutoSchema
from rest_framework import serializers

# What str.strip() removes (every character whose str.isspace() is true), spelled out so that the pattern means the
# same to every regex engine a client may validate with (JSON Schema's \s and Python's differ on \x1c-\x1f).
PY_WHITESPACE = "\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
# Some character besides whitespace, and no NUL: what a stripped, non-blank DRF CharField accepts.
NOT_BLANK_PATTERN = f"^[^\\x00]*[^\\x00{PY_WHITESPACE}][^\\x00]*$"


class AutoSchema(BaseAutoSchema):
    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if isinstance(field, serializers.PrimaryKeyRelatedField) and schema.get("type") == "integer":
            schema.setdefault("minimum", 1)  # ids start at 1 and are 64-bit
            schema.setdefault("maximum", 2**63 - 1)
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and schema.get("type") == "string"
            and "pattern" not in schema
            and "enum" not in schema
            and not any(isinstance(v, RegexValidator) for v in field.validators)  # its pattern is stated instead
        ):
            if field.trim_whitespace and not field.allow_blank:
                # DRF strips the value first (str.strip), so all-whitespace is refused as blank.
                schema["pattern"] = NOT_BLANK_PATTERN
            else:
                schema["pattern"] = "^[^\\x00]*$"  # DRF refuses NUL characters in every string
        if isinstance(field, serializers.ListField) and schema.get("type") == "array":
            if field.allow_empty is False and "minItems" not in schema:
                schema["minItems"] = max(1, field.min_length or 0)
            if getattr(field, "unique_items", False):
                schema["uniqueItems"] = True
        if isinstance(field, serializers.ListSerializer) and schema.get("type") == "array":
            # A nested `Serializer(many=True, min_length=…, max_length=…)` (e.g. bulk operations).
            if field.min_length or field.allow_empty is False:
                schema.setdefault("minItems", max(1, field.min_length or 0))
            if field.max_length:
                schema.setdefault("maxItems", field.max_length)
        return schema


class UniqueListField(serializers.ListField):
    """A list whose items must differ (stated as uniqueItems in the schema)."""

    unique_items = True
    default_error_messages = {"not_unique": "Each item may appear only once."}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len(set(value)) != len(value):
            self.fail("not_unique")
        return value
