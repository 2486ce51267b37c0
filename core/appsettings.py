"""One settings mechanism for every app.

Each app declares its settings once, with their defaults, in `<app>/conf.py`:

    from core.appsettings import Derived, reader

    DEFAULTS = {
        "WEBHOOK_TIMEOUT_SECONDS": 10.0,  # one comment line per setting
        "WEBHOOK_LEASE_SECONDS": Derived(lambda s: s.CELERY_TASK_TIME_LIMIT + 60),
    }
    __getattr__ = reader(DEFAULTS)

and code reads them by their Django setting name: `from webhooks import conf; conf.WEBHOOK_TIMEOUT_SECONDS`.
A value is the Django setting of that name when the project defines it (settings module, environment),
else the default. It is read at each access, so pytest-django's `settings` fixture and override_settings
apply; only values passed to decorators at import (task time limits) are fixed when the module loads.
A name missing from DEFAULTS is an AttributeError, so a typo fails loudly.
"""

from django.conf import settings

_UNSET = object()


class Derived:
    """A default computed from other Django settings when read, e.g. from CELERY_TASK_TIME_LIMIT."""

    def __init__(self, compute):
        self.compute = compute


def reader(defaults):
    """A module-level `__getattr__` (PEP 562) serving `defaults` with Django settings taking precedence."""

    def __getattr__(name):
        if name not in defaults:
            raise AttributeError(name)
        value = getattr(settings, name, _UNSET)
        if value is _UNSET:
            value = defaults[name]
            if isinstance(value, Derived):
                value = value.compute(settings)
        return value

    return __getattr__
