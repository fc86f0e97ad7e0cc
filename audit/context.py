"""Who is acting, and through what: the current request, or a service/job/command context."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCES = ("web", "api", "job", "command", "system")


@dataclass(frozen=True)
class Actor:
    user: Any
    source: str
    request_id: str


_explicit: ContextVar[Actor | None] = ContextVar("audit_actor", default=None)
_request: ContextVar[Any] = ContextVar("audit_request", default=None)


@contextmanager
def actor(user: Any, source: str = "command", request_id: str = "") -> Iterator[Actor]:
    """Attribute the changes made inside the block to `user` (None: the system) via `source`."""
    if source not in SOURCES:
        raise ValueError(f"unknown audit source {source!r}")
    value = Actor(user, source, request_id or uuid.uuid4().hex)
    token = _explicit.set(value)
    try:
        yield value
    finally:
        _explicit.reset(token)


@contextmanager
def request_scope(request: Any) -> Iterator[None]:
    """Set by the middleware: the actor is read lazily from request.user (DRF sets it on the
    underlying request once it has authenticated inside the view)."""
    token = _request.set(request)
    try:
        yield
    finally:
        _request.reset(token)


def _in_celery_task() -> bool:
    try:
        from celery import current_task
    except ImportError:  # pragma: no cover
        return False
    return bool(current_task and getattr(current_task.request, "id", None))


def current() -> Actor:
    """The actor of the change being recorded now."""
    explicit = _explicit.get()
    if explicit is not None:
        return explicit
    request = _request.get()
    if request is not None:
        user = getattr(request, "user", None)
        if user is not None and not getattr(user, "is_authenticated", False):
            user = None
        source = "api" if request.path.startswith("/api/") else "web"
        return Actor(user, source, getattr(request, "audit_request_id", ""))
    if _in_celery_task():
        return Actor(None, "job", "")
    if Path(sys.argv[0]).name == "manage.py":  # a management command outside any request
        return Actor(None, "command", "")
    return Actor(None, "system", "")
