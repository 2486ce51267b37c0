from datetime import timedelta

from django.contrib.auth import get_user_model
from rest_framework import serializers

from accounts.models import ApiToken
from core.serializers import InputSerializer

User = get_user_model()


class LoginInputSerializer(InputSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class LoginOutputSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`. Shown only this once.")
    id = serializers.IntegerField(help_text="The token's id, to list or revoke it under /api/v1/auth/tokens/.")
    expires_at = serializers.DateTimeField(allow_null=True)


class ApiTokenOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at"]
        read_only_fields = fields


class ApiTokenCreatedSerializer(ApiTokenOutputSerializer):
    token = serializers.CharField(read_only=True, help_text="The key: shown only in this response, never again.")

    class Meta(ApiTokenOutputSerializer.Meta):
        fields = [*ApiTokenOutputSerializer.Meta.fields, "token"]
        read_only_fields = fields


class ApiTokenInputSerializer(InputSerializer):
    name = serializers.CharField(max_length=100)
    expires_in_days = serializers.IntegerField(
        min_value=1,
        max_value=3650,
        required=False,
        allow_null=True,
        help_text="Days until the token expires; omitted: API_TOKEN_DEFAULT_TTL; null: never.",
    )

    def validate(self, attrs):
        if "expires_in_days" in attrs:
            days = attrs.pop("expires_in_days")
            attrs["expires_in"] = timedelta(days=days) if days else False
        return attrs


class UserLookupSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "first_name", "last_name"]


class UserLookupQuerySerializer(serializers.Serializer):
    search = serializers.CharField(
        max_length=150, required=False, allow_blank=True, help_text="A username or name prefix."
    )
