"""core.appsettings: every app's conf module reads Django settings at call time, with its declared defaults."""

import ast
import importlib
import types
from pathlib import Path

import pytest

from core.appsettings import Derived, reader

ROOT = Path(__file__).resolve().parents[2]
APPS = ["core", "accounts", "tasks_app", "notifications", "webhooks", "analytics", "reminders"]


def Module(defaults):
    """A conf module as the apps write it: `__getattr__ = reader(DEFAULTS)`."""
    module = types.ModuleType("conf_under_test")
    module.DEFAULTS = defaults
    module.__getattr__ = reader(defaults)
    return module


def test_default_then_setting_then_override(settings):
    conf = Module({"TM_TEST_LIMIT": 5})
    assert conf.TM_TEST_LIMIT == 5
    settings.TM_TEST_LIMIT = 7
    assert conf.TM_TEST_LIMIT == 7  # read at each access, so the settings fixture applies
    del settings.TM_TEST_LIMIT
    assert conf.TM_TEST_LIMIT == 5


def test_derived_default_follows_the_setting_it_derives_from(settings):
    conf = Module({"TM_TEST_LEASE": Derived(lambda s: s.CELERY_TASK_TIME_LIMIT + 60)})
    settings.CELERY_TASK_TIME_LIMIT = 100
    assert conf.TM_TEST_LEASE == 160
    settings.TM_TEST_LEASE = 5
    assert conf.TM_TEST_LEASE == 5


def test_unknown_name_is_an_attribute_error():
    conf = Module({"TM_TEST_LIMIT": 5})
    with pytest.raises(AttributeError):
        conf.TM_TEST_LIMT  # noqa: B018


@pytest.mark.parametrize("app", [a for a in APPS if (ROOT / a / "conf.py").exists()])
def test_every_app_conf_uses_the_mechanism_and_its_defaults_resolve(app):
    conf = importlib.import_module(f"{app}.conf")
    assert conf.__getattr__.__qualname__.startswith("reader.")
    for name in conf.DEFAULTS:
        getattr(conf, name)  # every default (and every Derived one) resolves


def test_apps_read_their_settings_only_through_conf():
    """No `getattr(settings, ...)` with a default outside core/appsettings.py: one mechanism, not four."""
    offenders = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "tests" in path.parts or "migrations" in path.parts or path.name == "appsettings.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "id", None) == "getattr"
                    and isinstance(node.args[0], ast.Name)
                    and node.args[0].id == "settings"
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
