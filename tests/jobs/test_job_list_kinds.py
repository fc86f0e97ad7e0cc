"""The jobs list on this round's job kinds: behaviour analyses (trends, retention) with their
inputs by name and segment names (behaviour registers the describer; jobs imports no domain
app), the saved insights' re-read after an import, and the segment refresh the auto-refresh
queued after an import. Exact lines, worked out from the inputs by hand."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from behaviour.models import BehaviourAnalysis
from events.models import Dataset
from jobs.listing import DESCRIBERS, RESULTS
from jobs.models import Job
from segments.models import Segment

T0 = dt.datetime(2026, 3, 2, 9, 0, 0, tzinfo=dt.UTC)
pytestmark = pytest.mark.django_db


def _job(ws, kind, params, *, result=None):  # type: ignore[no-untyped-def]
    s = dt.timedelta(seconds=1)
    return Job.objects.create(workspace=ws, kind=kind, params=params, input_hash=f"{kind}{params}",
                              state="succeeded", progress=100, created_at=T0,
                              started_at=T0 + s, finished_at=T0 + 3 * s, result=result or {})


def _row(page: str, job: Job) -> str:
    m = re.search(rf'<tr id="job-{job.pk}">(.*?)</tr>', page, re.S)
    assert m, f"no row for job {job.pk}"
    return re.sub(r"\s+", " ", m.group(1))


@pytest.fixture
def world(team):  # type: ignore[no-untyped-def]
    acme = team["acme"]
    ds = Dataset.objects.create(workspace=acme, name="Demo events", version=3)
    team_plan = Segment.objects.create(workspace=acme, dataset=ds, name="Team plan",
                                       definition={})
    pro = Segment.objects.create(workspace=acme, dataset=ds, name="Pro plan", definition={})
    trends = BehaviourAnalysis.objects.create(
        workspace=acme, dataset=ds, kind="trends", dataset_version=3, input_hash="t",
        params={"segment": team_plan.pk,
                "series": [{"event": "any", "measure": "count"},
                           {"event": "report_created", "measure": "unique_users"}],
                "interval": "week", "date_from": "2026-01-05", "date_to": "",
                "breakdown_by": "segments", "breakdown_key": "",
                "breakdown_segments": [pro.pk], "top": 5, "formula": "B / A * 100",
                "compare": True})
    retention = BehaviourAnalysis.objects.create(
        workspace=acme, dataset=ds, kind="retention", dataset_version=3, input_hash="r",
        params={"segment": None, "cohort_by": "signup", "start_event": "signup",
                "return_events": ["feature_used", "report_created"], "return_set": "activity",
                "period": "week", "period_kind": "rolling", "period_days": 7,
                "mode": "recurring", "return_on": "within", "within": 2, "max_periods": 12})
    jobs = {
        "trends": _job(acme, "behaviour", {"analysis_id": trends.pk}),
        "retention": _job(acme, "behaviour", {"analysis_id": retention.pk}),
        "insights": _job(acme, "insights", {"dataset_id": ds.pk, "version": 2},
                         result={"insights": 3, "current": 1, "queued": 2, "errors": []}),
        "auto": _job(acme, "refresh", {"dataset_id": ds.pk, "trigger": "import"}),
        "manual": _job(acme, "refresh", {"dataset_id": ds.pk}),
    }
    return {"ds": ds, "trends": trends, "retention": retention, "jobs": jobs,
            "team_plan": team_plan, "pro": pro, **team}


def test_behaviour_registers_its_kinds_from_ready():
    assert "behaviour" in DESCRIBERS and "insights" in RESULTS


def test_analysis_inputs_by_name(world, client):  # type: ignore[no-untyped-def]
    client.force_login(world["viewer"])
    page = client.get("/w/acme/jobs/").content.decode()
    trends = _row(page, world["jobs"]["trends"])
    for line in [f"Analysis:</span> Trends #{world['trends'].pk}",
                 "Dataset:</span> Demo events (v3)",
                 "Segment:</span> Team plan",
                 "Series:</span> A: events of any event, B: unique users of report_created",
                 "Per:</span> week (UTC)", "From:</span> 2026-01-05",
                 "Breakdown:</span> segments", "Compared with:</span> Pro plan",
                 "Top groups:</span> 5 (+ other)", "Formula:</span> B / A * 100",
                 "Previous period:</span> overlaid"]:
        assert line in trends, (line, trends)
    assert f'href="/w/acme/behaviour/{world["trends"].pk}/">Analysis page' in trends
    retention = _row(page, world["jobs"]["retention"])
    for line in ["Segment:</span> All users", "Start:</span> signup",
                 "Return events:</span> every activity event (2: feature_used, report_created)",
                 "Periods:</span> rolling 7 days from each user&#x27;s start",
                 "Return:</span> within 2 periods", "Mode:</span> recurring",
                 "Periods shown:</span> 12"]:
        assert line in retention, (line, retention)
    for row in (trends, retention):
        assert "{" not in row and "Period kind" not in row and "Breakdown key" not in row


def test_insights_reread_and_auto_refresh(world, client):  # type: ignore[no-untyped-def]
    client.force_login(world["viewer"])
    page = client.get("/w/acme/jobs/").content.decode()
    reread = _row(page, world["jobs"]["insights"])
    assert "<strong>Saved insights re-read after an import</strong>" in reread
    assert 'href="/w/acme/insights/">Insights dashboard' in reread
    assert "Dataset:</span> Demo events (v2)" in reread
    assert "Insights:</span> 3: 1 current, 2 queued" in reread
    auto = _row(page, world["jobs"]["auto"])
    assert "Started:</span> automatically, after an import" in auto
    assert 'href="/w/acme/segments/">Segment list' in auto
    assert "Started:" not in _row(page, world["jobs"]["manual"])


def test_segment_names_are_read_once_for_the_list(world, client,  # type: ignore[no-untyped-def]
                                                  django_assert_max_num_queries):
    client.force_login(world["viewer"])
    client.get("/w/acme/jobs/")
    with django_assert_max_num_queries(30) as few:
        client.get("/w/acme/jobs/")
    for _ in range(20):
        _job(world["acme"], "behaviour", {"analysis_id": world["trends"].pk})
        _job(world["acme"], "behaviour", {"analysis_id": world["retention"].pk})
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/w/acme/jobs/")


def test_auto_refresh_after_import_marks_its_job(world, settings):  # type: ignore[no-untyped-def]
    from segments.segment_services import refresh_after_import

    acme = world["acme"]
    acme.auto_refresh_segments = True
    acme.save()
    job = refresh_after_import(dataset_id=world["ds"].pk)
    assert job is not None and job.params == {"dataset_id": world["ds"].pk, "trigger": "import"}
