"""accounts settings and their defaults (core.appsettings): read as `conf.NAME`; a Django setting of the same
name (taskmgmt/settings/base.py reads them from the environment) overrides the default."""

from datetime import timedelta

from core.appsettings import reader

DEFAULTS = {
    # Lifetime of a token from auth/token/ (or created without expires_in_days); None: never expires.
    "API_TOKEN_DEFAULT_TTL": timedelta(days=90),
    # Named tokens a user may hold at once.
    "API_TOKEN_MAX_PER_USER": 50,
}
__getattr__ = reader(DEFAULTS)
