"""A rendered-page cache for the segment list and a segment's page, exact.

A cached page is served only while everything it shows is unchanged, and that is checked on
every request in the database (no version kept in memory, so two gunicorn processes with their
own caches can never serve a page older than the database). The key holds:

* the *stamp*, read in one query of indexed subqueries on the workspace row (``page_stamp``):
  the workspace's segments (count, latest edit: every save moves ``updated_at``, an archive
  too), snapshots (count, latest id), refreshes (latest id and finish: the "last refresh" line
  and its rank changes), datasets (count, latest edit: an import or an erasure that publishes
  a version writes ``updated_at``, so the "computed on v1; the data is now v3" notes follow),
  erasures (latest id and finish: an erasure scrubs refresh summaries with a queryset update),
  the workspace's write counts on segments and datasets (``accounts.changes.touch``, in each
  writing transaction: a write that commits after a later-timed one moves no maximum time
  or count, but always moves these),
  and the refresh job whose card the page shows (id, state, progress, message, error: jobs
  record progress with queryset updates, so no time stamp would move);
  and on a segment's page that segment's owner name and dataset (id, version, edit), in the
  same query (no row there: the page is rendered, a 404);
* what the request already loaded: the workspace's own fields (name, minimum size, next
  refresh), the member's role (buttons differ), the user (name and staff link in the header);
* the path with its query string.

Serving (``accounts.page_cache.serve``) keeps no CSRF token: a hit gets a fresh one for the
request's own secret, so a page is shared between the sessions of one user without sharing a
token. Pages with pending flash messages are neither served from nor put in the cache; only 200s
are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.http import HttpRequest, HttpResponse

from accounts import page_cache
from accounts.models import Membership, Workspace, WorkspaceVersion
from events.models import Dataset, Erasure
from jobs.models import Job

from .models import Refresh, Segment, SegmentSnapshot

TIMEOUT_SECONDS = 300
ACTIVE = ("queued", "running")


def _tables() -> dict[str, str]:
    user = get_user_model()
    return {"segment": Segment._meta.db_table, "snapshot": SegmentSnapshot._meta.db_table,
            "refresh": Refresh._meta.db_table, "dataset": Dataset._meta.db_table,
            "erasure": Erasure._meta.db_table, "job": Job._meta.db_table,
            "wv": WorkspaceVersion._meta.db_table,
            "user": user._meta.db_table,
            "username": user._meta.get_field(user.USERNAME_FIELD).column}


# Scalar subqueries, each on the workspace's foreign-key index (the job's on the state index);
# written as SQL once rather than compiled by the ORM on every request (that compile cost
# more than the query). A segment's edit moves the segments' latest edit; its own row adds
# what the page shows of other rows (the owner's name, the dataset) and says it exists.
_STAMP_SQL = """SELECT
 (SELECT COUNT(*) FROM {segment} WHERE workspace_id = %(ws)s),
 (SELECT MAX(updated_at) FROM {segment} WHERE workspace_id = %(ws)s),
 (SELECT COUNT(*) FROM {snapshot} WHERE workspace_id = %(ws)s),
 (SELECT MAX(id) FROM {snapshot} WHERE workspace_id = %(ws)s),
 (SELECT MAX(id) FROM {refresh} WHERE workspace_id = %(ws)s),
 (SELECT MAX(finished_at) FROM {refresh} WHERE workspace_id = %(ws)s),
 (SELECT COUNT(*) FROM {dataset} WHERE workspace_id = %(ws)s),
 (SELECT MAX(updated_at) FROM {dataset} WHERE workspace_id = %(ws)s),
 (SELECT MAX(id) FROM {erasure} WHERE workspace_id = %(ws)s),
 (SELECT MAX(finished_at) FROM {erasure} WHERE workspace_id = %(ws)s),
 (SELECT SUM(version) FROM {wv} WHERE workspace_id = %(ws)s
   AND topic IN ('segments', 'datasets')),
 (SELECT CAST(id AS TEXT) || '|' || state || '|' || CAST(progress AS TEXT) || '|' || message
         || '|' || error
  FROM {job} WHERE workspace_id = %(ws)s AND kind = 'refresh'
   AND state IN ('queued', 'running'){dataset_filter}
  ORDER BY created_at DESC, id DESC LIMIT 1),
 {segment_row}"""
_SEGMENT_ROW = """(SELECT COALESCE(u.{username}, '') || '|' || CAST(d.id AS TEXT) || '|'
         || CAST(d.version AS TEXT) || '|' || CAST(d.updated_at AS TEXT)
  FROM {segment} s JOIN {dataset} d ON d.id = s.dataset_id
   LEFT JOIN {user} u ON u.id = s.owner_id
  WHERE s.id = %(segment)s AND s.workspace_id = %(ws)s)"""
# The job card of the segment's dataset: a key of the job's JSON params, as Django's
# params__dataset_id=<id> reads it.
_DATASET_FILTER = {
    "postgresql": " AND (params -> 'dataset_id') ="
                  " (SELECT to_jsonb(dataset_id) FROM {segment} WHERE id = %(segment)s)",
    "sqlite": " AND JSON_TYPE(params, '$.\"dataset_id\"') = 'integer'"
              " AND JSON_EXTRACT(params, '$.\"dataset_id\"') ="
              " (SELECT dataset_id FROM {segment} WHERE id = %(segment)s)",
}


def page_stamp(workspace: Workspace, *, segment_id: int | None = None) -> list[str] | None:
    """What the workspace's segment pages are built from, now: one query. With
    ``segment_id`` (a segment's page) the job card is its dataset's, and None means no such
    segment in the workspace."""
    if segment_id is not None and connection.vendor not in _DATASET_FILTER:
        raise NotImplementedError(f"page_stamp: no JSON filter for {connection.vendor}")
    tables = _tables()
    sql = _STAMP_SQL.format(
        **tables,
        dataset_filter="" if segment_id is None
        else _DATASET_FILTER[connection.vendor].format(**tables),
        segment_row="NULL" if segment_id is None else _SEGMENT_ROW.format(**tables))
    with connection.cursor() as cursor:
        cursor.execute(sql, {"ws": workspace.pk, "segment": segment_id})
        row = cursor.fetchone()
    if segment_id is not None and row[-1] is None:
        return None
    return [str(value) for value in row]


def _who(request: HttpRequest, workspace: Workspace, membership: Membership) -> list[str]:
    user: Any = request.user
    shown = [f.attname for f in Workspace._meta.concrete_fields]
    return [str(user.pk), user.get_username(), str(user.is_staff), membership.role,
            repr([getattr(workspace, name) for name in shown])]


def cached(request: HttpRequest, workspace: Workspace, membership: Membership,
           render: Callable[[], HttpResponse], *, segment_id: int | None = None,
           ) -> HttpResponse:
    """The page from the cache while its key (see the module) is unchanged, else rendered.
    ``segment_id``: a segment's page (rendered, so a 404, when the segment is not there)."""
    if not page_cache.cacheable(request):
        return render()
    stamp = page_stamp(workspace, segment_id=segment_id)
    if stamp is None:
        return render()
    parts = [*_who(request, workspace, membership), request.get_full_path(), *stamp]
    return page_cache.serve(request, prefix="segment-page:", parts=parts, render=render,
                            timeout=TIMEOUT_SECONDS)
