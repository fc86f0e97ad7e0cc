"""Query count per request is constant as data grows (issue 8, Load).

Each page is measured at a small and a larger data size; the larger one must not need more
queries (``django_assert_max_num_queries`` with the small size's count).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.models import Dataset
from experiments.models import Hypothesis
from planner.models import Investment
from segments.models import Refresh, Segment, SegmentSnapshot

pytestmark = pytest.mark.django_db

SIGNALS = {"ltv_90": {"estimate": 12.5, "low": 10.0, "high": 15.0},
           "conversion": {"estimate": 0.1, "low": 0.08, "high": 0.12},
           "retention_d7": {"estimate": 0.3, "low": 0.25, "high": 0.35}}


@pytest.fixture
def world(team):  # type: ignore[no-untyped-def]
    ws = team["acme"]
    dataset = Dataset.objects.create(workspace=ws, name="events")
    hyp = Hypothesis.objects.create(workspace=ws, statement="h", expected_lift=0.1,
                                    expected_lift_low=0.05, expected_lift_high=0.2)
    state = {"investments": 0, "segments": 0, "refreshes": 0}

    def grow(investments: int, segments: int, refreshes: int) -> list[Segment]:
        """Add investments (each with a target segment and a hypothesis), segments and
        ``refreshes`` snapshot rounds over every segment."""
        for i in range(state["segments"], state["segments"] + segments):
            Segment.objects.create(workspace=ws, dataset=dataset, name=f"seg {i:03d}",
                                   owner=team["analyst"],
                                   definition={"event": "purchase", "min_count": 1})
        state["segments"] += segments
        all_segments = list(Segment.objects.filter(dataset=dataset).order_by("pk"))
        invs = Investment.objects.bulk_create([
            Investment(workspace=ws, title=f"inv {i}", cost=1000 + i, expected_value=100_000 + i,
                       value_low=50, value_high=200, reach_users=1000, effort_total=2,
                       owner=team["analyst"],
                       value_sources={"reach": {"source": "segment", "stale": i % 2 == 0}})
            for i in range(state["investments"], state["investments"] + investments)
        ])
        state["investments"] += investments
        for n, inv in enumerate(invs):
            inv.target_segments.add(all_segments[n % len(all_segments)])
            inv.hypotheses.add(hyp)
        for _ in range(refreshes):
            state["refreshes"] += 1
            at = timezone.now() + timedelta(minutes=state["refreshes"])
            refresh = Refresh.objects.create(workspace=ws, dataset=dataset, dataset_version=1,
                                             as_of=at, finished_at=at)
            SegmentSnapshot.objects.bulk_create([
                SegmentSnapshot(workspace=ws, segment=s, refresh=refresh, dataset_version=1,
                                computed_at=at, size=500 + s.pk, share=0.1, signals=SIGNALS,
                                drift={"values": {"ltv_90": {"relative_change": 0.1,
                                                             "significant": True}}},
                                warnings=["w"])
                for s in all_segments
            ])
        return all_segments

    return ws, grow


def _count(client, url: str) -> int:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as ctx:
        res = client.get(url)
    assert res.status_code == 200, res.content[:500]
    return len(ctx.captured_queries)


def _logged_in(client, user):  # type: ignore[no-untyped-def]
    client.force_login(user)
    return client


def test_backlog_page_queries_do_not_grow(client, team, world, django_assert_max_num_queries):
    ws, grow = world
    client = _logged_in(client, team["analyst"])
    grow(investments=10, segments=3, refreshes=1)
    url = f"/w/{ws.slug}/backlog/"
    small = _count(client, url)
    grow(investments=190, segments=27, refreshes=2)
    with django_assert_max_num_queries(small):
        res = client.get(url)
    assert res.content.count(b'<td class="num">') >= 100 * 6
    # Pages of 100: ranks continue on the next page.
    assert b"Next 100" in res.content and b'<td class="num">101</td>' not in res.content
    second = client.get(url + "?sort=cost&page=2").content
    assert b'<td class="num">101</td>' in second and b"Previous 100" in second
    assert b"sort=cost&amp;page=1" in second and b"Next 100" not in second


def test_backlog_api_list_queries_do_not_grow(api, team, world, django_assert_max_num_queries):
    ws, grow = world
    client = api(team["analyst"])
    grow(investments=10, segments=3, refreshes=1)
    url = "/api/v1/investments/?page_size=100"
    small = _count(client, url)
    grow(investments=190, segments=27, refreshes=2)
    with django_assert_max_num_queries(small):
        res = client.get(url)
    assert len(res.json()["results"]) == 100


def test_segment_list_queries_do_not_grow(client, team, world, django_assert_max_num_queries):
    ws, grow = world
    client = _logged_in(client, team["analyst"])
    grow(investments=1, segments=3, refreshes=1)
    url = f"/w/{ws.slug}/segments/"
    small = _count(client, url)
    grow(investments=1, segments=27, refreshes=5)
    with django_assert_max_num_queries(small):
        res = client.get(url)
    assert res.content.count(b"seg 0") == 30


def test_segment_list_shows_the_latest_snapshot(client, team, world):
    ws, grow = world
    segments = grow(investments=1, segments=2, refreshes=3)
    latest = SegmentSnapshot.objects.filter(segment=segments[0]).order_by("-computed_at").first()
    SegmentSnapshot.objects.filter(pk=latest.pk).update(size=987654)
    res = _logged_in(client, team["analyst"]).get(f"/w/{ws.slug}/segments/")
    assert b"987" in res.content and res.content.count(b"987") >= 1


def test_segment_page_queries_do_not_grow(client, team, world, django_assert_max_num_queries):
    ws, grow = world
    client = _logged_in(client, team["analyst"])
    segment = grow(investments=1, segments=3, refreshes=1)[0]
    url = f"/w/{ws.slug}/segments/{segment.pk}/"
    small = _count(client, url)
    grow(investments=50, segments=27, refreshes=20)
    with django_assert_max_num_queries(small):
        client.get(url)
