"""The layout's rules that import-linter cannot state: no app imports another app's private
names, and every app named in the README's architecture picture exists."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "jobs", "events", "segments", "behaviour", "experiments", "planner",
        "integrations",
        "audit", "security", "config")


def _imports_of_private_names() -> list[str]:
    found = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                    continue
                other = node.module.split(".")[0]
                if other in APPS and other != app:
                    for alias in node.names:
                        if alias.name.startswith("_"):
                            found.append(f"{path.relative_to(ROOT)}: {node.module}.{alias.name}")
    return found


def test_no_app_imports_another_apps_private_names():
    assert _imports_of_private_names() == []


def test_the_checker_sees_a_private_import(tmp_path, monkeypatch):
    # The scan above must be able to fail: a planted private import is reported.
    fake = tmp_path / "planner"
    fake.mkdir()
    (fake / "x.py").write_text("from events.services import _secret\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    for app in APPS:
        (tmp_path / app).mkdir(exist_ok=True)
    assert _imports_of_private_names() == ["planner/x.py: events.services._secret"]


def test_every_app_of_the_architecture_picture_is_a_package():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for app in APPS:
        assert (ROOT / app / "__init__.py").exists(), app
        assert f"{app}/" in readme, f"README's architecture section does not name {app}/"
