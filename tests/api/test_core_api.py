"""REST API v1: authentication, workspace scoping, roles, upload flow, pagination."""

from __future__ import annotations

import io

import pytest
from django.utils import timezone

from accounts.models import ApiToken
from events.models import Dataset, Import
from jobs.models import Job

pytestmark = pytest.mark.django_db(transaction=False)

EVENTS = (
    "user_id,event,timestamp,revenue\n"
    "u1,signup,2025-01-01T10:00:00Z,\n"
    "u1,purchase,2025-01-02T10:00:00Z,12.5\n"
    "u2,signup,2025-01-03T10:00:00Z,\n"
    ",signup,2025-01-03T10:00:00Z,\n"
    "u2,signup,2025-01-03T10:00:00Z,\n"
)
MORE_EVENTS = (
    "user_id,event,timestamp,revenue\n"
    "u2,purchase,2025-01-04T10:00:00Z,30\n"
    "u1,signup,2025-01-01T10:00:00Z,\n"
    "u3,signup,2025-01-05T10:00:00Z,\n"
)


def upload(client, dataset_id: int, text: str, name: str = "events.csv", **extra):
    data = {"dataset": dataset_id, "events": io.BytesIO(text.encode())}
    data["events"].name = name
    data.update(extra)
    return client.post("/api/v1/imports/", data, format="multipart")


@pytest.fixture
def dataset(team):
    return Dataset.objects.create(workspace=team["acme"], name="web")


@pytest.fixture
def other_dataset(team):
    return Dataset.objects.create(workspace=team["other"], name="theirs")


def test_upload_imports_validates_and_reports(api, team, dataset, django_capture_on_commit_callbacks):
    client = api(team["analyst"])
    with django_capture_on_commit_callbacks(execute=True):
        res = upload(client, dataset.pk, EVENTS)
    assert res.status_code == 202, res.content
    record = Import.objects.get(pk=res.json()["id"])
    assert record.status == "succeeded"
    assert (record.rows_read, record.rows_kept, record.rows_added) == (5, 3, 3)
    report = client.get(f"/api/v1/imports/{record.pk}/report/").json()
    problems = report["report"]["events"]["problems"]
    assert problems["missing_user_id"]["count"] == 1
    assert problems["missing_user_id"]["samples"][0]["line"] == 5
    assert problems["duplicate"]["count"] == 1
    dataset.refresh_from_db()
    assert (dataset.total_events, dataset.total_users, dataset.version) == (3, 2, 1)
    job = client.get(f"/api/v1/jobs/{record.job_id}/").json()
    assert (job["state"], job["progress"], job["attempts"]) == ("succeeded", 100, 1)


def test_same_bytes_twice_add_nothing_and_a_later_file_appends(
    api, team, dataset, django_capture_on_commit_callbacks
):
    client = api(team["analyst"])
    with django_capture_on_commit_callbacks(execute=True):
        first = upload(client, dataset.pk, EVENTS)
        again = upload(client, dataset.pk, EVENTS, name="renamed.csv")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Import.objects.count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        later = upload(client, dataset.pk, MORE_EVENTS)
    assert later.status_code == 202
    record = Import.objects.get(pk=later.json()["id"])
    # u1 signup is already stored: 2 of 3 rows are new.
    assert (record.rows_read, record.rows_kept, record.rows_added) == (3, 2, 2)
    dataset.refresh_from_db()
    assert (dataset.total_events, dataset.total_users, dataset.version) == (5, 3, 2)
    catalog = client.get(f"/api/v1/datasets/{dataset.pk}/catalog/").json()
    counts = {e["event"]: (e["count"], e["users"]) for e in catalog["event_catalog"]}
    assert counts == {"signup": (3, 3), "purchase": (2, 2)}


def test_rejected_upload_leaves_the_dataset_intact(api, team, dataset,
                                                   django_capture_on_commit_callbacks):
    client = api(team["analyst"])
    with django_capture_on_commit_callbacks(execute=True):
        upload(client, dataset.pk, EVENTS)
        bad = upload(client, dataset.pk, "who,what\nu1,x\n")
    record = Import.objects.get(pk=bad.json()["id"])
    assert record.status == "rejected"
    assert record.error["code"] == "missing_column"
    assert "timestamp" in record.error["message"]
    dataset.refresh_from_db()
    assert (dataset.total_events, dataset.version) == (3, 1)
    job = Job.objects.get(pk=record.job_id)
    assert job.state == "failed" and "missing_column" not in job.message


ENDPOINTS = [
    "/api/v1/workspaces/",
    "/api/v1/datasets/",
    "/api/v1/imports/",
    "/api/v1/jobs/",
]


@pytest.mark.parametrize("url", ENDPOINTS)
def test_anonymous_requests_are_refused_with_401(api, url):
    res = api().get(url)
    assert res.status_code == 401


def test_every_detail_endpoint_is_404_from_another_workspace(
    api, team, other_dataset, django_capture_on_commit_callbacks
):
    owner = api(team["outsider"])
    with django_capture_on_commit_callbacks(execute=True):
        created = upload(owner, other_dataset.pk, EVENTS).json()
    urls = [
        "/api/v1/workspaces/other/",
        f"/api/v1/datasets/{other_dataset.pk}/",
        f"/api/v1/datasets/{other_dataset.pk}/catalog/",
        f"/api/v1/imports/{created['id']}/",
        f"/api/v1/imports/{created['id']}/report/",
        f"/api/v1/jobs/{created['job']['id']}/",
    ]
    stranger = api(team["admin"])
    for url in urls:
        assert owner.get(url).status_code == 200, url
        assert stranger.get(url).status_code == 404, url
    assert stranger.delete(f"/api/v1/datasets/{other_dataset.pk}/").status_code == 404
    assert upload(stranger, other_dataset.pk, MORE_EVENTS).status_code == 404
    res = stranger.post("/api/v1/datasets/", {"workspace": "other", "name": "x"}, format="json")
    assert res.status_code == 404
    # Lists never show the other workspace's rows.
    for url in ENDPOINTS:
        body = stranger.get(url).json()
        assert all(row.get("workspace", "acme") == "acme" for row in body["results"]), url


@pytest.mark.parametrize(
    ("role", "create_status", "import_status", "delete_status"),
    [("viewer", 403, 403, 403), ("council", 403, 403, 403), ("analyst", 201, 202, 403),
     ("admin", 201, 202, 204)],
)
def test_roles_decide_who_may_create_import_and_delete(
    api, team, dataset, role, create_status, import_status, delete_status,
    django_capture_on_commit_callbacks,
):
    client = api(team[role])
    res = client.post("/api/v1/datasets/", {"workspace": "acme", "name": f"new-{role}"},
                      format="json")
    assert res.status_code == create_status
    with django_capture_on_commit_callbacks(execute=True):
        assert upload(client, dataset.pk, EVENTS).status_code == import_status
    assert client.delete(f"/api/v1/datasets/{dataset.pk}/").status_code == delete_status


def test_owner_and_status_fields_cannot_be_mass_assigned(api, team):
    client = api(team["analyst"])
    res = client.post("/api/v1/datasets/", {"workspace": "acme", "name": "d", "version": 99,
                                            "total_events": 5}, format="json")
    assert res.status_code == 201
    assert (res.json()["version"], res.json()["total_events"]) == (0, 0)


def test_duplicate_dataset_name_is_a_400_with_the_field(api, team, dataset):
    res = api(team["analyst"]).post("/api/v1/datasets/", {"workspace": "acme", "name": "web"},
                                    format="json")
    assert res.status_code == 400
    assert "name" in res.json()


def test_named_tokens_authenticate_until_revoked(api, team):
    token, key = ApiToken.issue(user=team["viewer"], name="roadmap tool")
    client = api()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/v1/workspaces/").json()["results"][0]["role"] == "viewer"
    token.revoked_at = timezone.now()
    token.save()
    assert client.get("/api/v1/workspaces/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Bearer spk_not-a-real-key")
    assert client.get("/api/v1/workspaces/").status_code == 401


def test_pagination_caps_the_page_size_at_500(api, team):
    Job.objects.bulk_create(
        [Job(workspace=team["acme"], kind="import", input_hash=str(i)) for i in range(503)]
    )
    client = api(team["viewer"])
    body = client.get("/api/v1/jobs/?page_size=10000").json()
    assert body["count"] == 503
    assert len(body["results"]) == 500
    assert body["next"] is not None
    assert len(client.get("/api/v1/jobs/?page_size=7").json()["results"]) == 7


def test_schema_and_docs_are_served(api, team):
    client = api(team["viewer"])
    schema = client.get("/api/v1/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/imports/", "/api/v1/imports/{id}/report/", "/api/v1/jobs/{id}/",
            "/api/v1/datasets/{id}/catalog/"} <= set(paths)
    assert "401" in paths["/api/v1/datasets/"]["get"]["responses"]
    assert client.get("/api/v1/docs/").status_code == 200


def test_deleting_a_dataset_removes_its_events_only_after_commit(team, tmp_path,
                                                                  django_capture_on_commit_callbacks):
    from django.core.management import call_command
    from django.db import transaction

    from events.models import Dataset
    from events.services import dataset_delete, get_store

    (tmp_path / "e.csv").write_text("user_id,event,timestamp\nu1,signup,2025-01-01T00:00:00Z\n")
    call_command("import_events", workspace="acme", events=tmp_path / "e.csv", dataset="d")
    dataset = Dataset.objects.get(name="d")
    store = get_store()
    assert store.current(dataset.store_key) is not None
    # A deletion that rolls back keeps the stored events.
    try:
        with transaction.atomic():
            dataset_delete(dataset=Dataset.objects.get(pk=dataset.pk))
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert Dataset.objects.filter(pk=dataset.pk).exists()
    assert store.current(dataset.store_key) is not None
    with django_capture_on_commit_callbacks(execute=True):
        dataset_delete(dataset=Dataset.objects.get(pk=dataset.pk))
    assert store.current(dataset.store_key) is None
