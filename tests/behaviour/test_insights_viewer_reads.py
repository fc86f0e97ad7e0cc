"""A viewer's read of the insights dashboard (page and API) starts no compute: it shows
"updating" only when a job is already on its way (the re-read the import queued), and
otherwise says the newer version is not computed yet; an analyst's read queues the analysis."""

from __future__ import annotations

import pytest

from behaviour import insights
from behaviour.models import BehaviourAnalysis
from events.models import Dataset
from events.signals import import_succeeded
from jobs.models import Job
from tests.behaviour.test_trends_insights import import_csv, make_events, make_users

pytestmark = pytest.mark.django_db


@pytest.fixture
def on_v2(team, api, tmp_path, django_capture_on_commit_callbacks):
    """An insight computed on v1, then v2 imported with the import's re-read hook left out
    (nothing queued for v2 yet)."""
    import_csv(tmp_path, "v1", make_events(1, range(40)), make_users(range(40)))
    shop = {"dataset": Dataset.objects.get(name="shop"), **team}
    with django_capture_on_commit_callbacks(execute=True):
        r = api(shop["analyst"]).post("/api/v1/analyses/", {
            "dataset": shop["dataset"].pk, "kind": "trends",
            "params": {"series": [{"event": "view", "measure": "count"}]}}, format="json")
    analysis = BehaviourAnalysis.objects.get(pk=r.json()["id"])
    insight = insights.insight_save(analysis=analysis, name="Views", user=shop["analyst"])
    import_succeeded.disconnect(dispatch_uid="behaviour-insights-reread")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            import_csv(tmp_path, "v2", make_events(3, range(40, 50), n=50),
                       make_users(range(40, 50)))
    finally:
        insights.register()
    return {**shop, "insight": insight}


def test_a_viewer_page_read_queues_nothing(on_v2, client, django_capture_on_commit_callbacks):
    jobs_before = Job.objects.count()
    client.force_login(on_v2["viewer"])
    with django_capture_on_commit_callbacks(execute=False) as queued:
        page = client.get("/w/acme/insights/").content.decode()
    assert queued == [] and Job.objects.count() == jobs_before
    assert BehaviourAnalysis.objects.filter(dataset_version=2).count() == 0
    assert "computed on v1" in page and "updating to" not in page
    assert "v2 is out: not computed yet" in page


def test_a_viewer_api_read_queues_nothing(on_v2, api, django_capture_on_commit_callbacks):
    jobs_before = Job.objects.count()
    with django_capture_on_commit_callbacks(execute=False) as queued:
        got = api(on_v2["viewer"]).get(f"/api/v1/insights/{on_v2['insight'].pk}/").json()
    assert queued == [] and Job.objects.count() == jobs_before
    assert got["current"]["dataset_version"] == 1
    assert got["current"]["updating_to"] is None and got["current"]["behind"] == 2


def test_a_viewer_sees_updating_once_the_import_queued_the_reread(
        on_v2, client, django_capture_on_commit_callbacks):
    dataset = Dataset.objects.get(pk=on_v2["dataset"].pk)
    with django_capture_on_commit_callbacks(execute=False):  # queued, no worker yet
        insights.insights_after_import(dataset.pk)
    assert Job.objects.filter(kind="insights", state="queued").count() == 1
    jobs_before = Job.objects.count()
    client.force_login(on_v2["viewer"])
    page = client.get("/w/acme/insights/").content.decode()
    assert "updating to v2" in page and "computed on v1" in page
    assert "not computed yet" not in page and Job.objects.count() == jobs_before


def test_an_analyst_read_queues_the_analysis(on_v2, client, django_capture_on_commit_callbacks):
    client.force_login(on_v2["analyst"])
    with django_capture_on_commit_callbacks(execute=False) as queued:
        page = client.get("/w/acme/insights/").content.decode()
    assert len(queued) == 1 and "updating to v2" in page
    assert BehaviourAnalysis.objects.filter(dataset_version=2).count() == 1
