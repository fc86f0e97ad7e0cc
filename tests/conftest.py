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
    """Which tests that touch no database this pass runs (``PURE_TESTS``).

    ``make test`` runs the suite on SQLite and on PostgreSQL side by side
    (``scripts/test_both.sh``). Every test that touches the database runs in both passes. A test
    that touches none (the pure analytic and optimizer cores, parsers, filters) cannot answer
    differently on another database, so it runs once: ``PURE_TESTS=half-a`` keeps the pure tests
    whose node id hashes even, ``half-b`` the odd ones (the two passes split them, so each pass
    takes about the same time), ``none`` none; unset or ``all``, every test runs."""
    import os
    import zlib

    mode = os.environ.get("PURE_TESTS", "all")
    if mode == "all":
        return
    if mode not in ("half-a", "half-b", "none"):
        raise pytest.UsageError(f"PURE_TESTS must be all, half-a, half-b or none, not {mode!r}")
    keep, drop = [], []
    for item in items:
        if _uses_database(item):
            keep.append(item)
            continue
        parity = zlib.crc32(item.nodeid.encode()) % 2
        wanted = mode == ("half-a" if parity == 0 else "half-b")
        (keep if wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
