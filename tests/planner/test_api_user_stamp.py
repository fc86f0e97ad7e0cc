"""The investments list's stamp read per workspace equals the aggregate over all of them."""

from __future__ import annotations

import pytest
from django.db.models import Count, Max

from accounts.models import Membership
from planner import api_cache
from planner.models import Investment

pytestmark = pytest.mark.django_db


def aggregate(user) -> tuple:  # type: ignore[no-untyped-def]
    """The figures as the ORM aggregates them over the user's workspaces, one query."""
    row = Investment.objects.filter(workspace__memberships__user=user).aggregate(
        n=Count("id"), changed=Max("changed_at"), updated=Max("updated_at"),
        valued=Max("value_computed_at"))
    return row["n"], row["changed"], row["updated"], row["valued"]


def parts(user) -> list[str]:  # type: ignore[no-untyped-def]
    return api_cache.user_stamp(user.pk).split("|")


def test_the_stamp_adds_counts_and_takes_the_latest_times_across_workspaces(team):
    analyst, outsider = team["analyst"], team["outsider"]
    assert parts(analyst) == ["0", "None", "None", "None", "0"]
    for n in range(3):
        Investment.objects.create(workspace=team["acme"], title=f"a{n}", cost=10)
    for n in range(2):
        Investment.objects.create(workspace=team["other"], title=f"o{n}", cost=10)
    assert parts(analyst)[0] == "3" and parts(outsider)[0] == "2"
    Membership.objects.create(workspace=team["other"], user=analyst, role="viewer")
    n, changed, updated, valued = aggregate(analyst)
    assert n == 5
    stamp = parts(analyst)
    assert stamp[0] == "5"
    # The latest edit is the one in 'other', made last.
    latest = Investment.objects.filter(workspace=team["other"]).latest("updated_at").updated_at
    assert updated == latest
    assert stamp[2] in (str(latest), latest.strftime("%Y-%m-%d %H:%M:%S.%f"))
    assert stamp[3] == "None" and valued is None
    # An edit of one item in 'acme' moves the latest edit.
    item = Investment.objects.filter(workspace=team["acme"]).first()
    item.title = "edited"
    item.save()
    after = parts(analyst)
    assert after[2] != stamp[2] and after[0] == "5"
    # A delete lowers the count; the outsider's own stamp never sees 'acme'.
    item.delete()
    assert parts(analyst)[0] == "4" and parts(outsider)[0] == "2"
