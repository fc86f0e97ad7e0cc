"""The jobs page: each job with its kind in words, its parameters by name, how long it waited
and ran, and a link to its result page (jobs/listing.py)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from behaviour.models import BehaviourAnalysis
from events.models import Dataset, Erasure, Import
from experiments.models import Experiment, Hypothesis
from jobs.listing import RESULTS, duration_text, timing_text
from jobs.models import Job
from planner.models import OptimizationRun, Scenario

T0 = dt.datetime(2026, 3, 2, 9, 0, 0, tzinfo=dt.UTC)


def test_durations_read_as_people_say_them():
    assert duration_text(0.05) == "< 0.1 s"
    assert duration_text(0.3) == "0.3 s"
    assert duration_text(4.25) == "4.2 s"  # 4.25 is 4.2499... in binary: one decimal shown
    assert duration_text(59.94) == "59.9 s"
    assert duration_text(192) == "3 min 12 s"
    assert duration_text(3900) == "1 h 5 min"


def test_timing_says_waited_and_ran():
    s = dt.timedelta(seconds=1)
    done = Job(kind="refresh", state="succeeded", created_at=T0, started_at=T0 + 0.3 * s,
               finished_at=T0 + 4.5 * s)
    assert timing_text(done) == "ran 4.2 s, waited 0.3 s"
    running = Job(kind="refresh", state="running", created_at=T0, started_at=T0 + 2 * s)
    assert timing_text(running, now=T0 + 10 * s) == "running for 8.0 s, waited 2.0 s"
    queued = Job(kind="refresh", state="queued", created_at=T0)
    assert timing_text(queued, now=T0 + 1.5 * s) == "waiting for 1.5 s"
    never = Job(kind="refresh", state="failed", created_at=T0, finished_at=T0 + s)
    assert timing_text(never) == "never started"


def _job(ws, kind, params, *, ran=4.5, waited=0.3, state="succeeded", input_hash=""):  # type: ignore[no-untyped-def]
    s = dt.timedelta(seconds=1)
    return Job.objects.create(workspace=ws, kind=kind, params=params,
                              input_hash=input_hash or kind,
                              state=state, progress=100, created_at=T0,
                              started_at=T0 + waited * s, finished_at=T0 + (waited + ran) * s)


@pytest.fixture
def world(team):  # type: ignore[no-untyped-def]
    acme = team["acme"]
    ds = Dataset.objects.create(workspace=acme, name="Demo events", version=3)
    imp = Import.objects.create(workspace=acme, dataset=ds, events_name="events.csv",
                                rows_added=12345, input_hash="i")
    analysis = BehaviourAnalysis.objects.create(workspace=acme, dataset=ds, kind="funnel",
                                                params={"steps": ["a", "b"]}, dataset_version=2,
                                                input_hash="a")
    scenario = Scenario.objects.create(workspace=acme, name="Q3 plan", budget=500,
                                       frontier_points=0)
    run = OptimizationRun.objects.create(workspace=acme, scenario=scenario, input_hash="r")
    hyp = Hypothesis.objects.create(workspace=acme, statement="Checklists help", metric="m",
                                    expected_lift=0.1)
    exp = Experiment.objects.create(
        workspace=acme, hypothesis=hyp, name="Mobile checklist A/B", data_source="summary",
        arms=[{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
        primary_metric={"name": "m", "kind": "conversion", "event": "e", "window_days": 7})
    erasure = Erasure.objects.create(workspace=acme, dataset=ds, dataset_name="Demo events",
                                     user_hash="h")
    jobs = {
        "import": _job(acme, "import", {"import_id": imp.pk}),
        "refresh": _job(acme, "refresh", {"dataset_id": ds.pk}, ran=192,
                        input_hash=f"refresh:{ds.pk}:v1"),
        "clusters": _job(acme, "clusters", {"dataset_id": ds.pk}),
        "behaviour": _job(acme, "behaviour", {"analysis_id": analysis.pk}),
        "optimize": _job(acme, "optimize", {"run_id": run.pk}),
        "experiment_analyze": _job(acme, "experiment_analyze", {"experiment_id": exp.pk}),
        "erase": _job(acme, "erase", {"erasure_id": erasure.pk, "user_id": "secret-user-42"}),
        "insights": _job(acme, "insights", {"dataset_id": ds.pk, "version": 2}),
        "mystery": _job(acme, "trend_export", {"dataset_id": ds.pk, "user_id": "u9"}),
        "gone": _job(acme, "behaviour", {"analysis_id": 999999}, state="failed"),
    }
    return {"ds": ds, "analysis": analysis, "run": run, "exp": exp, "jobs": jobs, **team}


def _row(page: str, job: Job) -> str:
    m = re.search(rf'<tr id="job-{job.pk}">(.*?)</tr>', page, re.S)
    assert m, f"no row for job {job.pk}"
    return re.sub(r"\s+", " ", m.group(1))


@pytest.mark.django_db
def test_every_kind_links_its_result_and_names_its_parameters(world, client):  # type: ignore[no-untyped-def]
    client.force_login(world["viewer"])
    page = client.get("/w/acme/jobs/").content.decode()
    ds, jobs = world["ds"], world["jobs"]
    expected = {
        "import": ("Import", f'href="/w/acme/datasets/{ds.pk}/">Dataset page',
                   ["Dataset:</span> Demo events", "Events file:</span> events.csv",
                    "Rows added:</span> 12,345"]),
        # The version the job refreshed (v1, from its input hash), not the dataset's v3 now.
        "refresh": ("Segment refresh", 'href="/w/acme/segments/">Segment list',
                    ["Dataset:</span> Demo events (v1)"]),
        "clusters": ("Cluster suggestions",
                     f'href="/w/acme/segments/clusters/?dataset={ds.pk}">Cluster suggestions',
                     ["Dataset:</span> Demo events (v3)"]),
        "behaviour": ("Behaviour analysis",
                      f'href="/w/acme/behaviour/{world["analysis"].pk}/">Analysis page',
                      [f"Analysis:</span> Funnel #{world['analysis'].pk}",
                       "Dataset:</span> Demo events (v2)"]),
        "optimize": ("Optimizer run", f'href="/w/acme/runs/{world["run"].pk}/">Run page',
                     ["Scenario:</span> Q3 plan", f"Run:</span> #{world['run'].pk}"]),
        "experiment_analyze": ("Experiment analysis",
                               f'href="/w/acme/experiments/{world["exp"].pk}/">Experiment page',
                               ["Experiment:</span> Mobile checklist A/B"]),
        # Registered by behaviour (jobs imports no domain app): the version it re-read.
        "insights": ("Saved insights re-read after an import",
                     'href="/w/acme/insights/">Insights dashboard',
                     ["Dataset:</span> Demo events (v2)"]),
        "erase": ("Erasure of one user&#x27;s data", f'href="/w/acme/datasets/{ds.pk}/">Dataset page',
                  ["Dataset:</span> Demo events"]),
    }
    assert set(expected) == set(RESULTS)  # every mapped kind is checked here
    for kind, (title, link, params) in expected.items():
        row = _row(page, jobs[kind])
        assert f"<strong>{title}</strong>" in row, (kind, row)
        assert link in row, (kind, row)
        for p in params:
            assert p in row, (kind, p, row)
        assert "{" not in row  # no raw dict
    assert "ran 3 min 12 s, waited 0.3 s" in _row(page, jobs["refresh"])
    assert "ran 4.5 s, waited 0.3 s" in _row(page, jobs["import"])
    # The erased user's id is never shown, in a mapped kind or an unknown one.
    assert "secret-user-42" not in page and "u9" not in page
    mystery = _row(page, jobs["mystery"])
    assert "<strong>Trend export</strong>" in mystery and f"Dataset id:</span> {ds.pk}" in mystery
    gone = _row(page, jobs["gone"])
    assert "Analysis:</span> #999999 (deleted)" in gone and "href" not in gone


@pytest.mark.django_db
def test_the_list_reads_each_kind_once(world, client, django_assert_max_num_queries):  # type: ignore[no-untyped-def]
    """One query per job kind, whatever the number of jobs."""
    client.force_login(world["viewer"])
    client.get("/w/acme/jobs/")  # warm the session and the user
    with django_assert_max_num_queries(20) as few:
        client.get("/w/acme/jobs/")
    for _ in range(30):
        _job(world["acme"], "behaviour", {"analysis_id": world["analysis"].pk})
        _job(world["acme"], "optimize", {"run_id": world["run"].pk})
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/w/acme/jobs/")
