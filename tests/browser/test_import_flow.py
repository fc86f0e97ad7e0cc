"""The import flow in a real browser: log in, create a dataset, upload, read the quality report.

Runs against pytest-django's live server; the import job runs eagerly when the upload request
commits, and the import page shows the finished report (or polls until it is finished).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]

# 8 data rows: one without a user id, one exact duplicate (lines 3 and 4).
EVENTS_CSV = """\
user_id,event,timestamp,revenue,properties
u1,signup,2026-09-01T09:00:00Z,,"{""plan"": ""free"", ""source"": ""ads""}"
u1,view_page,2026-09-01T09:05:00Z,,"{""path"": ""/pricing""}"
u1,view_page,2026-09-01T09:05:00Z,,"{""path"": ""/pricing""}"
u2,signup,2026-09-02T10:00:00Z,,
u2,view_page,2026-09-03T11:00:00Z,,"{""path"": ""/docs""}"
u2,view_page,2026-09-04T12:00:00Z,,"{""path"": ""/"", ""referrer"": ""newsletter""}"
,view_page,2026-09-04T13:00:00Z,,"{""path"": ""/""}"
u3,purchase,2026-09-08T08:00:00Z,19.99,"{""plan"": ""pro""}"
"""
USERS_CSV = """\
user_id,signup_time,plan,country
u1,2026-09-01T09:00:00Z,free,DE
u2,2026-09-02T10:00:00Z,pro,US
u3,2026-09-07T18:30:00Z,pro,FR
"""
EXPECTED_CATALOG = {"view_page": "3", "signup": "2", "purchase": "1"}


def write_files(tmp_path: Path) -> tuple[Path, Path]:
    events = tmp_path / "events.csv"
    users = tmp_path / "users.csv"
    events.write_text(EVENTS_CSV, encoding="utf-8")
    users.write_text(USERS_CSV, encoding="utf-8")
    return events, users


def seed_dataset(workspace: Any, tmp_path: Path, name: str = "Seeded events") -> Any:
    """A dataset with the files above imported through the service layer (not the browser)."""
    from events import services
    from events.models import Import

    dataset = services.dataset_create(workspace=workspace, name=name)
    events, users = write_files(tmp_path)
    record, _ = services.import_create(dataset=dataset, user=None,
                                       events=services.copy_to_uploads(events, workspace=workspace),
                                       users=services.copy_to_uploads(users, workspace=workspace))
    assert Import.objects.get(pk=record.pk).status == "succeeded"
    return dataset


def stat(page: Any, label: str) -> str:
    """The number of a `.stats` tile, by its label."""
    tile = page.locator(".stats > div").filter(has=page.locator("span", has_text=label))
    return tile.locator("strong").inner_text().strip()


def table_rows(table: Any) -> dict[str, list[str]]:
    """A table's body as {row header's first line: [cell texts]}."""
    out: dict[str, list[str]] = {}
    rows = table.locator("tbody tr")
    for i in range(rows.count()):
        row = rows.nth(i)
        key = row.locator("th").first.inner_text().strip().splitlines()[0].strip()
        out[key] = [c.strip() for c in row.locator("td").all_inner_texts()]
    return out


def test_analyst_uploads_files_and_reads_the_quality_report(
    live_server: Any, team: dict[str, Any], new_page: Any, login: Any, tmp_path: Path
) -> None:
    events_file, users_file = write_files(tmp_path)
    page = new_page()
    login(page, "analyst")
    # The only workspace: home redirects to it.
    expect(page).to_have_url(f"{live_server.url}/w/acme/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme")
    expect(page.get_by_text("Your role: analyst")).to_be_visible()

    page.get_by_label("Name").fill("Product events")
    page.get_by_label("Description").fill("Web app, September")
    page.get_by_role("button", name="Create dataset").click()
    page.wait_for_url("**/w/acme/datasets/*/")
    dataset_url = page.url
    expect(page.get_by_role("heading", level=1)).to_have_text("Product events")
    expect(page.get_by_text("Nothing imported yet.")).to_be_visible()

    page.get_by_label("Events file").set_input_files(events_file)
    page.get_by_label("Users file").set_input_files(users_file)
    page.get_by_role("button", name="Upload and import").click()
    page.wait_for_url("**/w/acme/imports/*/", timeout=30_000)
    expect(page.locator("h1 .state")).to_have_text("succeeded", timeout=30_000)
    expect(page.locator("#import-error")).to_have_count(0)

    assert stat(page, "rows read") == "8"
    assert stat(page, "rows kept") == "6"
    assert stat(page, "new events stored") == "6"
    assert stat(page, "new user records") == "3"

    events_section = page.locator("section.card").filter(
        has=page.get_by_role("heading", name="Quality report: events file (csv)"))
    expect(events_section).to_contain_text("8 rows read, 7 valid.")
    problems = table_rows(events_section.locator("table.problems"))
    assert set(problems) == {"missing_user_id", "duplicate"}
    assert problems["missing_user_id"][0] == "1"
    assert "line 8" in problems["missing_user_id"][1]
    assert problems["duplicate"][0] == "1"
    users_section = page.locator("section.card").filter(
        has=page.get_by_role("heading", name="Quality report: users file (csv)"))
    expect(users_section).to_contain_text("3 rows read, 3 valid.")
    expect(users_section).to_contain_text("No problems found.")

    page.get_by_role("link", name="Product events").click()
    page.wait_for_url(dataset_url)
    catalog = table_rows(page.locator("table.catalog"))
    assert {name: cells[0] for name, cells in catalog.items()} == EXPECTED_CATALOG
    assert list(catalog) == ["view_page", "signup", "purchase"]  # most frequent first
    assert catalog["view_page"][1] == "2"  # distinct users
    assert stat(page, "events") == "6"
    assert stat(page, "users") == "3"
    assert stat(page, "event types") == "3"
    attributes = table_rows(page.locator("section.card table").last)
    assert set(attributes) >= {"plan", "country"}
    imports = page.locator("section.card").filter(
        has=page.get_by_role("heading", name="Imports", exact=True)).locator("tbody tr")
    expect(imports).to_have_count(1)
    expect(imports.first.locator("td.num")).to_have_text(["8", "6", "6"])
    assert page.errors == []


def test_viewer_sees_the_catalog_but_no_upload_form(
    live_server: Any, team: dict[str, Any], new_page: Any, login: Any, tmp_path: Path
) -> None:
    dataset = seed_dataset(team["acme"], tmp_path)
    page = new_page()
    login(page, "viewer")
    expect(page.get_by_text("Your role: viewer")).to_be_visible()
    expect(page.get_by_role("button", name="Create dataset")).to_have_count(0)
    page.goto(f"{live_server.url}/w/acme/datasets/{dataset.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Seeded events")
    expect(page.locator("table.catalog tbody tr")).to_have_count(3)
    expect(page.locator("#import-form")).to_have_count(0)
    expect(page.get_by_role("button", name="Upload and import")).to_have_count(0)
    expect(page.get_by_label("Events file")).to_have_count(0)
    assert page.errors == []


def test_member_of_another_workspace_gets_404(
    live_server: Any, team: dict[str, Any], new_page: Any, login: Any, tmp_path: Path
) -> None:
    dataset = seed_dataset(team["acme"], tmp_path)
    record = dataset.imports.get()
    page = new_page()
    login(page, "outsider")
    expect(page).to_have_url(f"{live_server.url}/w/other/")
    for path in (f"/w/acme/datasets/{dataset.pk}/", f"/w/acme/imports/{record.pk}/",
                 "/w/acme/", "/w/acme/jobs/"):
        response = page.goto(live_server.url + path)
        assert response is not None and response.status == 404, path
        expect(page.locator("body")).not_to_contain_text("Seeded events")
    # Their own workspace with the same dataset id does not leak it either.
    response = page.goto(f"{live_server.url}/w/other/datasets/{dataset.pk}/")
    assert response is not None and response.status == 404


# Elements that stick out to the right of the viewport, outermost first (for the failure text).
OVERFLOWING_JS = """(width) => {
  const clipped = (el) => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== "visible") return true;
    }
    return false;
  };
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    if (el.getBoundingClientRect().right > width + 0.5 && !clipped(el)
        && !out.some((o) => o.contains(el))) out.push(el);
  }
  return out.slice(0, 8).map((el) => el.tagName.toLowerCase()
    + (el.id ? "#" + el.id : "") + (el.className && typeof el.className === "string"
    ? "." + el.className.trim().split(/\\s+/).join(".") : "")
    + " right=" + Math.round(el.getBoundingClientRect().right));
}"""


@pytest.mark.parametrize("width", [1280, 390])
def test_pages_fit_the_viewport_width(
    width: int, live_server: Any, team: dict[str, Any], new_page: Any, login: Any,
    tmp_path: Path
) -> None:
    dataset = seed_dataset(team["acme"], tmp_path)
    record = dataset.imports.get()
    page = new_page(width=width, height=800)
    login(page, "analyst")  # analysts also see the upload and dataset forms
    for path in (f"/w/acme/datasets/{dataset.pk}/", f"/w/acme/imports/{record.pk}/",
                 "/w/acme/", "/w/acme/jobs/"):
        page.goto(live_server.url + path)
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, (
            f"{path} is {scroll_width}px wide at a {width}px viewport; sticking out: "
            f"{page.evaluate(OVERFLOWING_JS, width)}")
    assert page.errors == []
