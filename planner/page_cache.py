"""A rendered-page cache for the ranked backlog, keyed by everything the page shows.

The key holds the workspace's *backlog version*, read in one query: the investments' count and
latest edit and re-valuation, the latest decision, hypothesis edit, segment edit and refresh.
Any write the page could show moves one of those. The version itself is cached for
``VERSION_SECONDS`` and dropped when a model it reads is saved or deleted (after commit); with a
shared cache (Redis, ``CACHE_URL``) that is immediate everywhere, with the per-process default
another process may serve the previous page for up to ``VERSION_SECONDS``. The rest of the key
is the session (the page carries its user's name and CSRF token), the role and the query
string. Pages with pending flash messages are neither served from nor put in the cache; serving
(``accounts.page_cache.serve``) keeps no CSRF token in the stored page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Max, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.db.models.signals import post_delete, post_save
from django.http import HttpRequest, HttpResponse

from accounts import page_cache as shared_page_cache
from accounts.models import Workspace
from experiments.models import Hypothesis
from segments.models import Refresh, Segment

from .models import Decision, Investment

TIMEOUT_SECONDS = 300
VERSION_SECONDS = 2


def _version_key(workspace_id: int) -> str:
    return f"backlog-version:{workspace_id}"


def forget(workspace_id: int | None) -> None:
    """Drop the cached version now and again once the transaction commits (a request that
    read the version in between would otherwise cache the pre-commit state)."""
    if workspace_id is not None:
        cache.delete(_version_key(workspace_id))
        transaction.on_commit(lambda: cache.delete(_version_key(workspace_id)))


def _on_write(sender: Any, instance: Any, **kwargs: Any) -> None:
    forget(getattr(instance, "workspace_id", None))


for _model in (Investment, Decision, Hypothesis, Segment, Refresh):
    post_save.connect(_on_write, sender=_model, dispatch_uid=f"backlog-cache-{_model.__name__}")
    post_delete.connect(_on_write, sender=_model,
                        dispatch_uid=f"backlog-cache-del-{_model.__name__}")


def _latest(qs: Any, field: str) -> Subquery:
    return Subquery(qs.filter(workspace=OuterRef("pk")).order_by().values("workspace")
                    .annotate(x=Max(field)).values("x")[:1])


def backlog_version(workspace: Workspace) -> str:
    key = _version_key(workspace.pk)
    version = cache.get(key)
    if version is None:
        version = _read_version(workspace)
        cache.set(key, version, VERSION_SECONDS)
    return version


def _read_version(workspace: Workspace) -> str:
    row = Workspace.objects.filter(pk=workspace.pk).annotate(
        n=Coalesce(Subquery(Investment.objects.filter(workspace=OuterRef("pk")).order_by()
                            .values("workspace").annotate(c=Count("id")).values("c")[:1]), 0),
        inv_edit=_latest(Investment.objects, "updated_at"),
        inv_value=_latest(Investment.objects, "value_computed_at"),
        decision=_latest(Decision.objects, "decided_at"),
        hypothesis=_latest(Hypothesis.objects, "updated_at"),
        segment=_latest(Segment.objects, "updated_at"),
        refresh=_latest(Refresh.objects, "id"),
    ).values("n", "inv_edit", "inv_value", "decision", "hypothesis", "segment",
             "refresh").first()
    return repr(sorted((row or {}).items()))


def cached(request: HttpRequest, workspace: Workspace, role: str,
           render: Callable[[], HttpResponse]) -> HttpResponse:
    if not shared_page_cache.cacheable(request):
        return render()
    session = getattr(request, "session", None)
    parts = [str(workspace.pk), role, session.session_key if session else "",
             request.get_full_path(), backlog_version(workspace)]
    return shared_page_cache.serve(request, prefix="backlog-page:", parts=parts, render=render,
                                   timeout=TIMEOUT_SECONDS)
