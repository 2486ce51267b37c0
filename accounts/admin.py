"""API tokens in admin: name, prefix and dates only (the key is never stored). DRF's token admin, which shows
keys in clear, is removed."""

from django.contrib import admin

from accounts.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "expires_at", "last_used_at"]
    search_fields = ["user__username", "name", "prefix"]
    raw_id_fields = ["user"]
    readonly_fields = ["user", "name", "prefix", "created_at", "expires_at", "last_used_at"]
    exclude = ["digest"]

    def has_add_permission(self, request):  # tokens are made through the API, where the key can be shown once
        return False

    def has_change_permission(self, request, obj=None):
        return False


def _unregister_drf_token_admin():
    from rest_framework.authtoken.models import Token, TokenProxy

    for model in (Token, TokenProxy):
        if admin.site.is_registered(model):
            admin.site.unregister(model)


_unregister_drf_token_admin()
