"""Arrows point from the feature apps to the core domain, never back.

tasks_app must not import notifications, webhooks, analytics or reminders: not at module level, not
inside a function, not through importlib. The feature apps react to tasks_app's signals instead.
"""

import ast
from pathlib import Path

FEATURE_APPS = {"notifications", "webhooks", "analytics", "reminders"}
TASKS_APP = Path(__file__).resolve().parents[1]


def imported_modules(tree):
    """(line, module) of every import in the tree, at any depth."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def back_edges(root):
    found = []
    for path in sorted(root.rglob("*.py")):
        for line, module in imported_modules(ast.parse(path.read_text(), filename=str(path))):
            if module.split(".")[0] in FEATURE_APPS:
                found.append(f"{path.relative_to(root.parent)}:{line} imports {module}")
    return found


def test_tasks_app_imports_no_feature_app():
    assert back_edges(TASKS_APP) == []


def test_the_walk_finds_imports_at_any_depth(tmp_path):
    package = tmp_path / "tasks_app"
    package.mkdir()
    (package / "top.py").write_text("import webhooks.models\nfrom analytics import services\n")
    (package / "nested.py").write_text(
        "def f():\n    from notifications.services import notification_create\n"
        "    import importlib\n    return importlib.import_module('reminders.models')\n"
        "from . import top\nfrom core import enqueue\n"
    )
    assert back_edges(package) == [
        "tasks_app/nested.py:2 imports notifications.services",
        "tasks_app/nested.py:4 imports reminders.models",
        "tasks_app/top.py:1 imports webhooks.models",
        "tasks_app/top.py:2 imports analytics",
    ]
