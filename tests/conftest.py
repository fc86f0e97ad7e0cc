"""Shared fixtures: users with roles, workspaces, API clients, a private event store."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture(autouse=True)
def _event_store(tmp_path, settings):  # type: ignore[no-untyped-def]
    # Hashing passwords at full strength would dominate the suite's time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EVENT_STORE = str(tmp_path / "event-store")
    settings.EVENT_STORE_PARTITIONS = 4
    return settings.EVENT_STORE


@pytest.fixture(autouse=True)
def _eager_tasks(request):  # type: ignore[no-untyped-def]
    """Outside the worker tests a dispatched job runs in-process, right at commit."""
    from config.celery import app

    eager = request.node.get_closest_marker("worker") is None
    old = app.conf.task_always_eager
    app.conf.task_always_eager = eager
    yield
    app.conf.task_always_eager = old


@pytest.fixture
def make_user(db):  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    def make(username: str, password: str = "pw-for-tests-123") -> object:
        return get_user_model().objects.create_user(username=username, password=password)

    return make


@pytest.fixture
def workspace_factory(db):  # type: ignore[no-untyped-def]
    from accounts.models import Membership, Workspace

    def make(slug: str, members: dict[object, str] | None = None) -> Workspace:
        ws = Workspace.objects.create(slug=slug, name=slug.title())
        for user, role in (members or {}).items():
            Membership.objects.create(workspace=ws, user=user, role=role)
        return ws

    return make


@pytest.fixture
def team(make_user, workspace_factory):  # type: ignore[no-untyped-def]
    """Two workspaces: 'acme' with one user per role, 'other' with its own admin."""
    users = {role: make_user(role) for role in ("viewer", "analyst", "council", "admin")}
    outsider = make_user("outsider")
    acme = workspace_factory("acme", {u: r for r, u in users.items()})
    other = workspace_factory("other", {outsider: "admin"})
    return {"acme": acme, "other": other, "outsider": outsider, **users}


@pytest.fixture
def api(db):  # type: ignore[no-untyped-def]
    from rest_framework.test import APIClient

    def client_for(user: object | None = None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user=user)
        return client

    return client_for


@pytest.fixture(autouse=True)
def _no_dns(monkeypatch):  # type: ignore[no-untyped-def]
    """Saving a webhook resolves its host (integrations.egress): no query leaves the machine.
    Address literals and localhost resolve as usual; the page tests' receiver name is public;
    any other name does not resolve."""
    from integrations import egress

    real = socket.getaddrinfo
    table = {"hooks.example.com": "93.184.215.14"}

    def getaddrinfo(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        name = host.decode() if isinstance(host, bytes) else host
        if name is None or egress.parse_ip(name) is not None or name == "localhost":
            return real(host, port, *args, **kwargs)
        if name.lower() in table:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "",
                     (table[name.lower()], int(port or 0)))]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# Fixtures that reach the database (directly or through their own fixtures: ``item.fixturenames``
# is the whole closure).
_DB_FIXTURES = {"db", "transactional_db", "live_server", "django_db_reset_sequences",
                "django_db_serialized_rollback", "django_db_setup"}


def _uses_database(item: pytest.Item) -> bool:
    if item.get_closest_marker("django_db") is not None:
        return True
    return bool(_DB_FIXTURES & set(getattr(item, "fixturenames", ())))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL, run only the tests that touch the database.

    ``make test`` runs the suite twice, on SQLite and on PostgreSQL. A test that never touches
    the database (the pure analytic and optimizer cores, parsers, filters) cannot give another
    answer on another database, so the PostgreSQL pass leaves it to the SQLite pass (deselected,
    counted in the summary). ``TEST_ALL_ON_POSTGRES=1`` runs everything anyway."""
    import os

    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine or os.environ.get("TEST_ALL_ON_POSTGRES") == "1":
        return
    keep, drop = [], []
    for item in items:
        (keep if _uses_database(item) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
