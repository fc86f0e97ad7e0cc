"""A response cache for the investments list (the roadmap tools' ranked backlog), exact.

A cached page is served only while the rows it was built from are unchanged, and that is
checked on every request, in the database, with one aggregate query over the user's
workspaces' investments: their count and the latest ``changed_at``, ``updated_at`` and
``value_computed_at``. Every field the list returns moves one of those:

* an edit saves the row (``updated_at``); a re-valuation writes ``value_computed_at`` even when
  the value is the same; a value, interval, rank, decision, status or effort change moves
  ``changed_at`` (``planner.changes``);
* adding or deleting an item changes the count or the latest times;
* a deleted hypothesis, segment or value model drops out of the items' id lists without a save:
  ``planner.apps`` moves the linked items' ``changed_at`` before such a delete.

Times alone are not enough: a write takes its time before it commits, so one that commits
after a later-timed write moves no maximum (nor the count). Every write therefore also counts
in its workspace's ``BacklogVersion`` in the same transaction (``planner.changes.
backlog_touched``: the saves and deletes by signal, the bulk updates by hand), and the stamp
adds those counts: a commit always moves it.

So nothing is trusted to a signal reaching another process, and two processes (gunicorn
workers, each with its own memory cache) can never serve a page older than the database. The
rest of the key is the user (their workspaces decide the rows), the path with its query string
and the rendered format. Only JSON is cached.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.cache import cache
from django.db import connection

from accounts.models import Membership

from .models import BacklogVersion, Investment

TIMEOUT_SECONDS = 300


# The figures per workspace of the user, each from its own index ((workspace, changed_at),
# (workspace, updated_at), (workspace, value_computed_at): a MAX is one index probe, the COUNT an
# index-only scan), then combined: a count adds up and a maximum of maxima is the maximum. Written
# as SQL once: compiling the ORM aggregate cost more CPU than running it.
_USER_STAMP_SQL = """SELECT COALESCE(SUM(n), 0), MAX(changed), MAX(updated), MAX(valued),
 COALESCE(SUM(version), 0) FROM (
 SELECT (SELECT COUNT(*) FROM {inv} i WHERE i.workspace_id = m.workspace_id) AS n,
  (SELECT MAX(changed_at) FROM {inv} i WHERE i.workspace_id = m.workspace_id) AS changed,
  (SELECT MAX(updated_at) FROM {inv} i WHERE i.workspace_id = m.workspace_id) AS updated,
  (SELECT MAX(value_computed_at) FROM {inv} i WHERE i.workspace_id = m.workspace_id) AS valued,
  (SELECT version FROM {bv} b WHERE b.workspace_id = m.workspace_id) AS version
 FROM {membership} m WHERE m.user_id = %s) per_workspace"""


def user_stamp(user_id: int) -> str:
    """What the investments of the user's workspaces look like now (one membership each):
    their count, latest change, edit and valuation times and the sum of the workspaces'
    ``BacklogVersion`` counts, in one query."""
    sql = _USER_STAMP_SQL.format(inv=Investment._meta.db_table,
                                 membership=Membership._meta.db_table,
                                 bv=BacklogVersion._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_id])
        row = cursor.fetchone()
    return "|".join(str(value) for value in row)


def key_for(*, user_id: int, path: str, renderer: str, stamp: str) -> str:
    raw = "\x1f".join((str(user_id), renderer, path, stamp))
    return "investments-list:" + hashlib.sha256(raw.encode()).hexdigest()


def get(key: str) -> bytes | None:
    hit: Any = cache.get(key)
    return hit if isinstance(hit, bytes) else None


def put(key: str, content: bytes) -> None:
    cache.set(key, content, TIMEOUT_SECONDS)
