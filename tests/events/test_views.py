"""Pages: login required, workspace scoping, what each role sees."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from events.models import Dataset, Import

pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded(team, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user_id,event,timestamp\nu1,signup,2025-01-01T00:00:00Z\n"
                    "u2,signup,2025-01-02T00:00:00Z\nu2,report_created,2025-01-02T01:00:00Z\n")
    users = tmp_path / "users.csv"
    users.write_text("user_id,signup_time,plan\nu1,2025-01-01T00:00:00Z,free\n"
                     "u2,2025-01-02T00:00:00Z,pro\n")
    call_command("import_events", workspace="acme", events=path, users=users, dataset="web")
    return Dataset.objects.get(workspace=team["acme"], name="web")


def test_pages_need_a_login(client):
    res = client.get("/w/acme/")
    assert res.status_code == 302 and res["Location"].startswith("/accounts/login/")


def test_the_dataset_page_shows_the_catalog(client, team, loaded):
    client.force_login(team["viewer"])
    html = client.get(f"/w/acme/datasets/{loaded.pk}/").content.decode()
    assert "report_created" in html and "signup" in html
    assert "plan" in html and "pro (1)" in html
    assert 'id="import-form"' not in html  # viewers cannot import


def test_analysts_see_the_upload_form_and_the_quality_report(client, team, loaded):
    client.force_login(team["analyst"])
    assert 'id="import-form"' in client.get(f"/w/acme/datasets/{loaded.pk}/").content.decode()
    record = Import.objects.get(dataset=loaded)
    html = client.get(f"/w/acme/imports/{record.pk}/").content.decode()
    assert "Quality report" in html and "succeeded" in html


def test_other_workspaces_pages_are_404(client, team, loaded):
    client.force_login(team["outsider"])
    record = Import.objects.get(dataset=loaded)
    for url in ("/w/acme/", f"/w/acme/datasets/{loaded.pk}/", f"/w/acme/imports/{record.pk}/",
                "/w/acme/jobs/", f"/w/other/datasets/{loaded.pk}/"):
        assert client.get(url).status_code == 404, url


def test_creating_a_dataset_from_the_workspace_page(client, team):
    client.force_login(team["analyst"])
    res = client.post("/w/acme/", {"name": "mobile", "description": ""})
    dataset = Dataset.objects.get(workspace=team["acme"], name="mobile")
    assert res["Location"] == f"/w/acme/datasets/{dataset.pk}/"
    again = client.post("/w/acme/", {"name": "mobile"})
    assert "exists in the workspace" in again.content.decode()
    client.force_login(team["viewer"])
    assert client.post("/w/acme/", {"name": "nope"}).status_code == 403


def test_import_events_command_is_idempotent(team, loaded, tmp_path, capsys):
    capsys.readouterr()
    call_command("import_events", workspace="acme", events=tmp_path / "events.csv",
                 users=tmp_path / "users.csv", dataset="web")
    assert "already imported" in capsys.readouterr().out
    assert Import.objects.filter(dataset=loaded).count() == 1
    # The events alone are a different input, but every row is stored already.
    call_command("import_events", workspace="acme", events=tmp_path / "events.csv", dataset="web")
    assert "3 rows read, 0 kept, 0 new events; dataset v1" in capsys.readouterr().out
    loaded.refresh_from_db()
    assert (loaded.version, loaded.total_events) == (1, 3)
