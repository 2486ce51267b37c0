"""Existing DRF tokens (stored in clear in authtoken_token) become hashed ApiTokens, and the clear rows go.

The same key keeps working (only its SHA-256 is kept), and migrated tokens never expire, so nobody is locked out.
Reversing re-creates nothing: the keys are gone by design."""

import hashlib

from django.db import migrations


def hash_existing_tokens(apps, schema_editor):
    Token = apps.get_model("authtoken", "Token")
    ApiToken = apps.get_model("accounts", "ApiToken")
    for token in Token.objects.all().iterator():
        ApiToken.objects.get_or_create(
            digest=hashlib.sha256(token.key.encode()).hexdigest(),
            defaults={"user_id": token.user_id, "name": "migrated", "prefix": token.key[:8], "expires_at": None},
        )
    Token.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]

    operations = [migrations.RunPython(hash_existing_tokens, migrations.RunPython.noop)]
