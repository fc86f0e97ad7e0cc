"""Freshness in the browser: stale notes with a Refresh button, a refresh card that updates the
table it sits on, the compare chart's small multiples, the live size estimate.

SCREENSHOTS_DIR=docs/screenshots refreshes freshness.png and compare.png; else tmp_path."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from events import services as event_services
from events.models import Dataset
from jobs.models import Job
from jobs.services import job_run
from segments import segment_services
from segments.models import Refresh, Segment, SegmentSnapshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIRST = "user_id,event,timestamp,revenue\n" + "".join(
    f"u{i},signup,2025-01-0{1 + i % 5}T10:00:00Z,\n" for i in range(10)) + "".join(
    f"u{i},report_created,2025-01-0{2 + i % 5}T10:00:00Z,\n" for i in range(0, 10, 2))
# Six new users, three of whom report: reporters go from 5 to 8, users from 10 to 16.
SECOND = "user_id,event,timestamp,revenue\n" + "".join(
    f"n{i},signup,2025-01-06T10:00:00Z,\nn{i},report_created,2025-01-07T10:00:00Z,\n"
    for i in range(3)) + "".join(f"m{i},signup,2025-01-06T11:00:00Z,\n" for i in range(3))


def shots_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def import_text(dataset: Dataset, text: str, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    event_services.import_create(dataset=dataset, user=None,
                                 events=event_services.copy_to_uploads(
                                     path, workspace=dataset.workspace))


def test_a_stale_note_and_a_refresh_card_that_updates_its_table(
        new_page: Any, login: Any, live_server: Any, team: dict[str, Any], tmp_path: Path):
    ws = team["acme"]
    ws.min_segment_size = 1
    ws.save()
    dataset = event_services.dataset_create(workspace=ws, name="app")
    import_text(dataset, FIRST, tmp_path, "first.csv")  # runs at commit (eager tasks)
    dataset.refresh_from_db()
    seg = segment_services.segment_create(
        dataset=dataset, name="Reporters", definition={"event": "report_created"})
    job_run(job_id=segment_services.refresh_start(dataset=dataset).pk)
    assert SegmentSnapshot.objects.get(segment=seg).size == 5
    import_text(dataset, SECOND, tmp_path, "second.csv")
    dataset.refresh_from_db()
    assert (dataset.version, dataset.total_users) == (2, 16)

    # A viewer reads the note but has no button.
    viewer = new_page()
    login(viewer, "viewer")
    viewer.goto(f"{live_server.url}/w/acme/segments/")
    note = viewer.locator(".stale-note")
    expect(note).to_contain_text("computed on v1; the data is now v2 (+6 users)")
    expect(note.get_by_role("button", name="Refresh")).to_have_count(0)

    # The analyst's list shows the note, and a refresh card while the job is queued.
    job = Job.objects.create(workspace=ws, kind="refresh", params={"dataset_id": dataset.pk},
                             input_hash=f"refresh:{dataset.pk}:v{dataset.version}")
    page = new_page()
    login(page, "analyst")
    page.goto(f"{live_server.url}/w/acme/segments/")
    expect(page.locator(".stale-note")).to_contain_text(
        "computed on v1; the data is now v2 (+6 users)")
    expect(page.locator(".stale-note").get_by_role("button", name="Refresh")).to_be_visible()
    row = page.locator("#segment-table tbody tr").first
    expect(row.locator("td").first).to_have_text("5")
    expect(row.locator("th")).to_contain_text("stale: v1, data now v2")
    page.evaluate("window.__notReloaded = true")
    page.screenshot(path=str(shots_dir(tmp_path) / "freshness.png"), full_page=True)
    expect(page.locator(f'.job[data-job-id="{job.pk}"]')).to_be_visible()

    job_run(job_id=job.pk)  # the worker finishes while the page is open
    expect(page.locator("#segment-results[data-updated-at]")).to_have_count(1)
    row = page.locator("#segment-table tbody tr").first
    expect(row.locator("td").first).to_have_text("8")
    expect(row.locator("th")).not_to_contain_text("stale")
    expect(page.locator(".stale-note")).to_have_count(0)
    expect(page.locator(f'.job[data-job-id="{job.pk}"]')).to_have_count(0)
    assert page.evaluate("window.__notReloaded") is True  # replaced in place, no reload

    # The detail page is current now; the Refresh button on a stale page queues a refresh.
    page.goto(f"{live_server.url}/w/acme/segments/{seg.pk}/")
    expect(page.locator(".stale-note")).to_have_count(0)
    assert page.errors == [] and viewer.errors == []


SIGNALS = {
    "A": {"ltv_90": 42.5, "conversion": 0.12, "retention_d7": 0.31, "predicted_clv": 120.0},
    "B": {"ltv_90": 18.0, "conversion": 0.35, "retention_d7": 0.55, "predicted_clv": 60.0},
    "C": {"ltv_90": 7.25, "conversion": 0.05, "retention_d7": 0.12, "predicted_clv": 15.5},
}

TRACES_JS = """() => {
  const el = document.getElementById("chart-compare");
  const full = el._fullLayout;
  const counts = el.data.map(() => ({ bars: 0, sized: 0 }));
  el.querySelectorAll("g.trace.bars").forEach((g) => {
    const cd = g.__data__;
    const index = cd && cd[0] && cd[0].trace ? cd[0].trace.index : -1;
    if (index < 0) return;
    g.querySelectorAll("g.point path").forEach((p) => {
      const box = p.getBBox();
      counts[index].bars += 1;
      if (box.width > 0 && box.height > 0) counts[index].sized += 1;
    });
  });
  const name = (ref, letter) => letter + "axis" + ref.slice(1);
  return el.data.map((t, i) => ({
    name: t.name, visible: t.visible, unit: (t.meta || {}).unit, n: t.y.length,
    bars: counts[i].bars, sized: counts[i].sized,
    x: full[name(t.xaxis || "x", "x")].domain, y: full[name(t.yaxis || "y", "y")].domain,
    overlaying: full[name(t.yaxis || "y", "y")].overlaying || null,
    ytitle: full[name(t.yaxis || "y", "y")].title.text,
  }));
}"""


def test_the_compare_chart_shows_every_series_on_its_own_axis(
        new_page: Any, login: Any, live_server: Any, team: dict[str, Any], tmp_path: Path):
    ws = team["acme"]
    dataset = Dataset.objects.create(workspace=ws, name="events", version=1, total_users=1000)
    at = timezone.now() - timedelta(days=1)
    refresh = Refresh.objects.create(workspace=ws, dataset=dataset, dataset_version=1, as_of=at,
                                     finished_at=at)
    ids = []
    for name, values in SIGNALS.items():
        seg = Segment.objects.create(workspace=ws, dataset=dataset, name=name,
                                     definition={"event": "x"})
        ids.append(seg.pk)
        SegmentSnapshot.objects.create(
            workspace=ws, segment=seg, refresh=refresh, dataset_version=1, computed_at=at,
            size=100, share=0.1, signals={k: {"estimate": v, "low": v * 0.8, "high": v * 1.2}
                                          for k, v in values.items()})
    page = new_page()
    login(page, "viewer")
    page.goto(f"{live_server.url}/w/acme/segments/compare/?" + "&".join(f"s={i}" for i in ids))
    page.wait_for_selector("#chart-compare .main-svg")
    traces = page.evaluate(TRACES_JS)
    assert [t["name"] for t in traces] == ["LTV at 90 days", "Conversion to outcome",
                                           "Retention D7",
                                           "Predicted CLV (1 year, BG/NBD + Gamma-Gamma)"]
    for t in traces:
        assert t["visible"] is not False, t
        assert t["n"] == 3 and t["bars"] == 3 and t["sized"] == 3, t
        assert t["overlaying"] is None, t
        assert t["unit"] in t["ytitle"], t
    assert [t["unit"] for t in traces] == ["money per user", "share of users",
                                           "share of users", "money per user"]

    def overlap(a: list[float], b: list[float]) -> bool:
        return a[0] < b[1] and b[0] < a[1]

    for i, a in enumerate(traces):
        for b in traces[i + 1:]:
            shared = overlap(a["x"], b["x"]) and overlap(a["y"], b["y"])
            assert not shared, (a, b)  # one panel each: no two traces share a plot area
    page.screenshot(path=str(shots_dir(tmp_path) / "compare.png"), full_page=True)
    assert page.errors == []


def test_the_segment_form_shows_a_live_size_estimate(
        new_page: Any, login: Any, live_server: Any, team: dict[str, Any], tmp_path: Path):
    dataset = event_services.dataset_create(workspace=team["acme"], name="app")
    import_text(dataset, FIRST, tmp_path, "first.csv")
    page = new_page()
    login(page, "analyst")
    page.goto(f"{live_server.url}/w/acme/segments/new/")
    estimate = page.locator("#rule-estimate")
    page.select_option("#rb-kind", "event")
    page.fill("#rb-subject", "report_created")
    page.fill("#rb-value", "1")
    page.get_by_role("button", name="Add condition").click()
    expect(estimate).to_have_text(
        "5 users, an exact count over all 10 users (dataset v1)")
    page.fill("#id_definition", '{"all": [{"event": "nope_never_seen"}]}')
    expect(estimate).to_contain_text("Rule: all[0].event")
    expect(estimate).to_have_class("estimate error")
    page.fill("#id_definition", '{"all": []}')
    expect(estimate).to_have_text("10 users, an exact count over all 10 users (dataset v1)")
    assert page.errors == []
