"""Privacy: pseudonymized imports (keyed hash) and erasure of a user on request."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from behaviour.models import BehaviourAnalysis
from events import privacy
from events.models import Dataset, Erasure, Import
from events.privacy_services import ErasureInvalid, erase_user
from events.services import get_store
from events.store import partition_of
from experiments import services as experiment_services
from experiments.models import Experiment, Hypothesis
from jobs.models import Job
from segments import segment_services
from segments.models import Refresh, SegmentKind, SegmentSnapshot

pytestmark = pytest.mark.django_db

KEY = "test-pseudonymization-key-0123456789"
N = 40
# Ids that never occur inside one another, so "not in the text" is a real test.
IDS = [f"user-{i:03d}@example.org" for i in range(N)]
ERASED = IDS[7]
EVENTS = "user_id,event,timestamp,revenue\n" + "".join(
    f"{u},signup,2025-01-01T00:00:00Z,\n{u},purchase,2025-01-02T00:00:00Z,{10 * (1 + i % 2)}\n"
    for i, u in enumerate(IDS)
) + f"{IDS[0]},session_start,2025-06-01T00:00:00Z,\n" + f"{ERASED},,2025-06-02T00:00:00Z,\n"
USERS = "user_id,signup_time,plan\n" + "".join(
    f"{u},2025-01-01T00:00:00Z,{'pro' if i % 2 else 'free'}\n" for i, u in enumerate(IDS))
MORE = "user_id,event,timestamp,revenue\n" + "".join(
    f"{u},purchase,2025-01-02T00:00:00Z,{10 * (1 + i % 2)}\n" for i, u in enumerate(IDS[:10])
) + f"{IDS[3]},upgrade,2025-03-01T00:00:00Z,\nnewcomer@example.org,signup,2025-03-02T00:00:00Z,\n"


def expected_pseudonym(user_id: str, key: str = KEY) -> str:
    return "p_" + hmac.new(key.encode(), user_id.encode(), hashlib.sha256).hexdigest()[:32]


def run_import(tmp_path: Path, dataset: str = "app", events: str = EVENTS,
               users: str | None = USERS, **opts: object) -> None:
    name = hashlib.sha1(events.encode()).hexdigest()[:8]
    (tmp_path / f"e-{name}.csv").write_text(events)
    kwargs: dict[str, object] = {"workspace": "acme", "events": tmp_path / f"e-{name}.csv",
                                 "dataset": dataset, **opts}
    if users is not None:
        (tmp_path / "u.csv").write_text(users)
        kwargs["users"] = tmp_path / "u.csv"
    call_command("import_events", **kwargs)


def store_texts() -> list[str]:
    """Every string value of every Parquet file under the event store, and every other file."""
    root = Path(settings.EVENT_STORE)
    out: list[str] = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            for column in table.column_names:
                values = table.column(column).to_pylist()
                out.extend(str(v) for v in values if v is not None)
        else:
            out.append(path.read_bytes().decode("utf-8", "replace"))
    return out


# ----- pseudonymization --------------------------------------------------------------------------
def test_pseudonyms_are_keyed_hashes_computed_once_per_distinct_id():
    values = pd.Series(["a", "b", "a", None, "a"], dtype=object)
    out = privacy.pseudonymize(values, KEY.encode()).to_pylist()
    assert out == [expected_pseudonym("a"), expected_pseudonym("b"), expected_pseudonym("a"),
                   None, expected_pseudonym("a")]
    assert privacy.pseudonym(b"another-key-0123456789", "a") != out[0]
    assert privacy.PSEUDONYM_RE.match(out[0])


def test_pseudonymized_import_stores_no_raw_id(team, tmp_path, monkeypatch):
    monkeypatch.setenv(privacy.KEY_ENV, KEY)
    run_import(tmp_path, pseudonymize=True)
    dataset = Dataset.objects.get(name="app")
    assert dataset.id_mode == "pseudonymized"
    assert dataset.pseudonym_key_check == privacy.key_check(KEY.encode())
    store = get_store()
    events = store.read_events(dataset.store_key)
    users = store.read_users(dataset.store_key)
    assert set(events["user_id"]) == {expected_pseudonym(u) for u in IDS}
    assert set(users["user_id"]) == {expected_pseudonym(u) for u in IDS}
    assert (dataset.total_users, dataset.total_events) == (N, 2 * N + 1)
    texts = store_texts()
    assert texts, "the store has files"
    for raw in IDS:
        assert not any(raw in t for t in texts), raw
    # The quality report (in the manifest and the database) shows the pseudonym, not the id.
    record = Import.objects.get()
    sample = record.report["events"]["problems"]["missing_event"]["samples"][0]
    assert sample["values"]["user_id"] == expected_pseudonym(ERASED)
    database = json.dumps([record.report, record.error, record.options,
                           list(Dataset.objects.values()), list(Job.objects.values("params",
                                                                                   "result"))],
                          default=str)
    assert not any(raw in database for raw in IDS)
    assert KEY not in database
    # The raw uploads are not kept.
    assert not Path(record.events_path).exists() and not Path(record.users_path).exists()


def test_pseudonyms_are_stable_across_imports_and_deduplicate(team, tmp_path, monkeypatch):
    monkeypatch.setenv(privacy.KEY_ENV, KEY)
    run_import(tmp_path, pseudonymize=True)
    run_import(tmp_path, events=MORE, users=None, pseudonymize=True)
    dataset = Dataset.objects.get(name="app")
    second = Import.objects.order_by("-id").first()
    # 10 purchases were imported before: only the upgrade and the newcomer are new.
    assert second.rows_added == 2
    assert second.report["summary"]["duplicates_of_stored"] == 10
    assert (dataset.total_users, dataset.total_events) == (N + 1, 2 * N + 3)
    events = get_store().read_events(dataset.store_key)
    upgrades = events[events["event"] == "upgrade"]
    assert upgrades["user_id"].tolist() == [expected_pseudonym(IDS[3])]
    assert (events["user_id"] == expected_pseudonym(IDS[3])).sum() == 3


def test_a_missing_key_is_a_clear_error(team, tmp_path, monkeypatch, api):
    monkeypatch.delenv(privacy.KEY_ENV, raising=False)
    with pytest.raises(CommandError, match="PSEUDONYMIZATION_KEY"):
        run_import(tmp_path, pseudonymize=True)
    assert not Import.objects.exists()
    dataset = Dataset.objects.get(name="app")
    upload = io.BytesIO(EVENTS.encode())
    upload.name = "events.csv"
    res = api(team["analyst"]).post("/api/v1/imports/", {
        "dataset": dataset.pk, "events": upload, "pseudonymize": "true"}, format="multipart")
    assert res.status_code == 400
    assert res.json()["error"]["code"] == "pseudonymization_key_missing"
    monkeypatch.setenv(privacy.KEY_ENV, "short")
    with pytest.raises(CommandError, match="at least 16 characters"):
        run_import(tmp_path, pseudonymize=True)


def test_mixing_raw_and_pseudonymized_imports_is_refused(team, tmp_path, monkeypatch, api):
    monkeypatch.setenv(privacy.KEY_ENV, KEY)
    run_import(tmp_path, dataset="raw")
    with pytest.raises(CommandError, match="holds raw user ids; an import with pseudonymization"):
        run_import(tmp_path, dataset="raw", events=MORE, users=None, pseudonymize=True)
    run_import(tmp_path, dataset="hashed", pseudonymize=True)
    hashed = Dataset.objects.get(name="hashed")
    upload = io.BytesIO(MORE.encode())
    upload.name = "more.csv"
    res = api(team["analyst"]).post("/api/v1/imports/", {"dataset": hashed.pk, "events": upload},
                                    format="multipart")
    assert res.status_code == 400, res.content
    assert res.json()["error"]["code"] == "pseudonymization_mismatch"
    # Another key would make pseudonyms that match nothing stored.
    monkeypatch.setenv(privacy.KEY_ENV, "a-different-key-0123456789")
    with pytest.raises(CommandError, match="not the key this dataset was pseudonymized with"):
        run_import(tmp_path, dataset="hashed", events=MORE, users=None, pseudonymize=True)
    assert Dataset.objects.get(name="raw").id_mode == "raw"
    assert api(team["viewer"]).get(f"/api/v1/datasets/{hashed.pk}/").json()["id_mode"] == \
        "pseudonymized"


# ----- erasure -----------------------------------------------------------------------------------
@pytest.fixture
def world(team, tmp_path):
    """A raw dataset with a refreshed rule segment, a saved members segment, an experiment
    with an assignment table and a cached analysis that names users."""
    run_import(tmp_path)
    dataset = Dataset.objects.get(name="app")
    pro = segment_services.segment_create(
        dataset=dataset, name="pro", definition={"attribute": "plan", "op": "eq", "value": "pro"})
    members = segment_services.segment_create(
        dataset=dataset, name="dropped", kind=SegmentKind.CLUSTER,
        definition={"members": IDS[5:12], "source": {"analysis": 1}})
    call_command("refresh_segments", workspace="acme")
    hyp = Hypothesis.objects.create(workspace=team["acme"], statement="h")
    experiment = Experiment.objects.create(
        workspace=team["acme"], hypothesis=hyp, name="x", dataset=dataset,
        arms=[{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
        data_source="assignments")
    table = "user_id,arm,assigned_at\n" + "".join(
        f"{u},{'control' if i % 2 else 'treatment'},2025-01-01T00:00:00Z\n"
        for i, u in enumerate(IDS))
    experiment_services.assignments_upload(experiment=experiment, data=table.encode())
    analysis = BehaviourAnalysis.objects.create(
        workspace=team["acme"], dataset=dataset, kind="paths", params={},
        dataset_version=dataset.version, input_hash="x",
        result={"examples": [{"user": ERASED, "path": ["signup"]}, {"user": IDS[1]}], "users": 40})
    return {"dataset": dataset, "pro": pro, "members": members, "experiment": experiment,
            "analysis": analysis, **team}


def erase(api, user, dataset, user_id, capture, reason="DSAR-17"):  # type: ignore[no-untyped-def]
    with capture(execute=True):
        return api(user).post(f"/api/v1/datasets/{dataset.pk}/erase/",
                              {"user_id": user_id, "reason": reason}, format="json")


def without(frame: pd.DataFrame, user_id: str) -> pd.DataFrame:
    return frame[frame["user_id"] != user_id].reset_index(drop=True)


def test_erasure_removes_the_user_everywhere_and_nothing_else(
        world, api, django_capture_on_commit_callbacks):
    dataset = world["dataset"]
    store = get_store()
    key = dataset.store_key
    before_events = store.read_events(key)
    before_users = store.read_users(key)
    part = int(partition_of([ERASED], store.partitions)[0])
    before_parts = {p: store.read_partition_table(key, p) for p in range(store.partitions)}
    refresh_before = Refresh.objects.get()
    assert ERASED in segment_services.snapshot_members(
        SegmentSnapshot.objects.get(segment=world["pro"]))
    version_before = dataset.version
    record = Import.objects.get()
    assert Path(record.events_path).exists()

    res = erase(api, world["admin"], dataset, f"  {ERASED} ", django_capture_on_commit_callbacks)
    assert res.status_code == 202, res.content
    erasure = Erasure.objects.get()
    assert res.json()["id"] == erasure.pk and erasure.finished_at is not None
    assert erasure.job.state == "succeeded", erasure.job.error

    # The store: the user's events and attributes are gone; everyone else's rows are as before.
    after_events = store.read_events(key)
    after_users = store.read_users(key)
    assert ERASED not in set(after_events["user_id"]) and ERASED not in set(after_users["user_id"])
    pd.testing.assert_frame_equal(after_events, without(before_events, ERASED))
    pd.testing.assert_frame_equal(after_users, without(before_users, ERASED))
    for p in range(store.partitions):
        if p != part:
            assert store.read_partition_table(key, p).equals(before_parts[p])
    versions = sorted(d.name for d in store.dataset_dir(key).glob("v*"))
    assert versions == [store.current(key).path.name]  # no older version keeps the rows
    assert not any(ERASED in t for t in store_texts())
    dataset.refresh_from_db()
    assert dataset.version == version_before + 1
    assert (dataset.total_users, dataset.total_events) == (N - 1, 2 * N + 1 - 2)

    # Stored results.
    assert ERASED not in segment_services.snapshot_members(
        SegmentSnapshot.objects.get(segment=world["pro"], refresh=refresh_before))
    world["members"].refresh_from_db()
    assert world["members"].definition["members"] == [u for u in IDS[5:12] if u != ERASED]
    assert world["members"].definition["source"] == {"analysis": 1}
    experiment = world["experiment"]
    experiment.refresh_from_db()
    table = pd.read_parquet(experiment.assignments_file)
    assert ERASED not in set(table["user_id"]) and len(table) == N - 1
    assert experiment.assignments_rows == N - 1
    world["analysis"].refresh_from_db()
    assert world["analysis"].result["examples"][0]["user"] == "[erased]"
    assert world["analysis"].result["examples"][1]["user"] == IDS[1]
    record.refresh_from_db()
    assert ERASED not in json.dumps(record.report)
    assert not Path(record.events_path).exists()  # the raw upload named the user

    # The record: counts, a salted hash of the id, and the job no longer holds the id.
    counts = erasure.counts
    assert counts["events_removed"] == 2 and counts["attributes_removed"] == 2
    assert counts["users_removed"] == 1 and counts["new_store_version"] is True
    assert counts["store_version"] == dataset.version
    assert counts["results"]["snapshot_files"] == 1
    assert counts["results"]["assignment_tables"] == 1
    assert counts["results"]["segments"] == 1 and counts["results"]["behaviour_results"] == 1
    assert counts["results"]["raw_uploads_deleted"] == 2
    assert counts["results_touched"] == sum(counts["results"].values())
    assert ERASED not in erasure.user_hash
    assert privacy.user_hash_matches(erasure.user_hash, ERASED, settings.SECRET_KEY)
    assert (erasure.requested_by, erasure.reason) == (world["admin"], "DSAR-17")
    assert ERASED not in json.dumps(list(Job.objects.values("params", "result")), default=str)
    # The audit history of the members segment keeps the change, not the id.
    from audit.models import AuditEntry

    history = AuditEntry.objects.filter(object_type="segments.segment",
                                        object_id=str(world["members"].pk))
    assert history.count() == 2 and counts["results"]["audit_entries"] == 2
    assert ERASED not in json.dumps(list(history.values("before", "after")))
    assert "[erased]" in json.dumps(list(history.values("before", "after")))

    # A refresh after the erasure no longer counts the user.
    call_command("refresh_segments", workspace="acme")
    latest = Refresh.objects.order_by("-id").first()
    assert latest.pk != refresh_before.pk and latest.summary["users"] == N - 1
    snap = SegmentSnapshot.objects.get(segment=world["pro"], refresh=latest)
    assert snap.size == N // 2 - 1  # ERASED (index 7) was a pro user
    assert ERASED not in segment_services.snapshot_members(snap)

    # Twice is harmless: nothing left to erase, and the answer says when it was.
    again = erase(api, world["admin"], dataset, ERASED, django_capture_on_commit_callbacks)
    assert again.status_code == 400
    assert f"erasure #{erasure.pk}" in again.json()["user_id"][0]
    assert Erasure.objects.count() == 1


def test_erasure_of_an_unknown_user_is_a_clear_400(world, api, django_capture_on_commit_callbacks):
    dataset = world["dataset"]
    res = erase(api, world["admin"], dataset, "nobody@example.org",
                django_capture_on_commit_callbacks)
    assert res.status_code == 400
    assert "nothing to erase" in res.json()["user_id"][0]
    res = erase(api, world["admin"], dataset, "   ", django_capture_on_commit_callbacks)
    assert res.status_code == 400
    assert not Erasure.objects.exists()
    dataset.refresh_from_db()
    assert dataset.version == 1


def test_erasure_is_exactly_once_when_the_job_is_redelivered(
        world, django_capture_on_commit_callbacks):
    """The job published the store version and died: the redelivered job does not publish
    again and still finishes the database side."""
    from jobs.services import job_run

    dataset = world["dataset"]
    store = get_store()
    with django_capture_on_commit_callbacks(execute=False):
        erasure, created = erase_user(dataset=dataset, user_id=ERASED,
                                      requested_by=world["admin"], reason="")
    assert created
    # Another request for the same pending user returns the same erasure.
    with django_capture_on_commit_callbacks(execute=False):
        same, created = erase_user(dataset=dataset, user_id=ERASED, requested_by=None)
    assert (same.pk, created) == (erasure.pk, False)
    first = privacy.erase_from_store(store, dataset.store_key, ERASED, str(erasure.pk))
    assert first["published"] and first["version"] == 2
    job_run(job_id=erasure.job_id)
    erasure.refresh_from_db()
    assert erasure.job.state == "succeeded", erasure.job.error
    assert store.current(dataset.store_key).number == 2
    assert erasure.counts["events_removed"] == 2 and erasure.counts["store_version"] == 2
    assert erasure.counts["results"]["snapshot_files"] == 1 and "files_done" not in erasure.counts
    dataset.refresh_from_db()
    assert dataset.version == 2 and dataset.total_events == 2 * N - 1
    again = privacy.erase_from_store(store, dataset.store_key, ERASED, str(erasure.pk))
    assert again["already_applied"] and store.current(dataset.store_key).number == 2
    assert job_run(job_id=erasure.job_id) is None  # done: not claimed again


def test_erasure_in_a_pseudonymized_dataset_takes_the_raw_id(
        team, tmp_path, monkeypatch, api, django_capture_on_commit_callbacks):
    monkeypatch.setenv(privacy.KEY_ENV, KEY)
    run_import(tmp_path, pseudonymize=True)
    dataset = Dataset.objects.get(name="app")
    hyp = Hypothesis.objects.create(workspace=team["acme"], statement="h")
    experiment = Experiment.objects.create(
        workspace=team["acme"], hypothesis=hyp, name="x", dataset=dataset,
        arms=[{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
        data_source="assignments")
    # An assignment table of raw ids is stored as pseudonyms, like the events.
    table = "user_id,arm,assigned_at\n" + "".join(
        f"{u},control,2025-01-01T00:00:00Z\n" for u in IDS[:10])
    experiment_services.assignments_upload(experiment=experiment, data=table.encode())
    stored = pd.read_parquet(Experiment.objects.get(pk=experiment.pk).assignments_file)
    assert stored["user_id"].tolist() == [expected_pseudonym(u) for u in IDS[:10]]

    res = erase(api, team["admin"], dataset, ERASED, django_capture_on_commit_callbacks)
    assert res.status_code == 202, res.content
    events = get_store().read_events(dataset.store_key)
    assert expected_pseudonym(ERASED) not in set(events["user_id"])
    assert len(events) == 2 * N + 1 - 2
    stored = pd.read_parquet(Experiment.objects.get(pk=experiment.pk).assignments_file)
    assert expected_pseudonym(ERASED) not in set(stored["user_id"]) and len(stored) == 9
    # The pseudonym itself is accepted too.
    other = expected_pseudonym(IDS[2])
    res = erase(api, team["admin"], dataset, other, django_capture_on_commit_callbacks)
    assert res.status_code == 202
    assert other not in set(get_store().read_events(dataset.store_key)["user_id"])
    assert Erasure.objects.count() == 2
    assert all(re.fullmatch(r"[0-9a-f]{16}\$[0-9a-f]{64}", e.user_hash)
               for e in Erasure.objects.all())
    # Without the key, a raw id cannot be matched: a clear refusal.
    monkeypatch.delenv(privacy.KEY_ENV)
    res = erase(api, team["admin"], dataset, IDS[3], django_capture_on_commit_callbacks)
    assert res.status_code == 400 and "PSEUDONYMIZATION_KEY" in res.json()["user_id"][0]


def test_erasure_is_for_admins_only(world, api, client, django_capture_on_commit_callbacks):
    dataset = world["dataset"]
    for role in ("viewer", "analyst", "council"):
        res = erase(api, world[role], dataset, ERASED, django_capture_on_commit_callbacks)
        assert res.status_code == 403, role
    res = erase(api, world["outsider"], dataset, ERASED, django_capture_on_commit_callbacks)
    assert res.status_code == 404
    assert api(None).post(f"/api/v1/datasets/{dataset.pk}/erase/", {"user_id": ERASED},
                          format="json").status_code in (401, 403)
    assert not Erasure.objects.exists()
    # The page: admins see the form and may post it; an analyst may not.
    url = f"/w/acme/datasets/{dataset.pk}/"
    client.force_login(world["analyst"])
    assert b"Erase a user" not in client.get(url).content
    assert client.post(url + "erase/", {"user_id": ERASED}).status_code == 403
    client.force_login(world["outsider"])
    assert client.post(url + "erase/", {"user_id": ERASED}).status_code == 404
    client.force_login(world["admin"])
    assert b"Erase a user" in client.get(url).content
    with django_capture_on_commit_callbacks(execute=True):
        res = client.post(url + "erase/", {"user_id": ERASED, "reason": "by mail"})
    assert res.status_code == 302
    erasure = Erasure.objects.get()
    assert erasure.finished_at is not None and erasure.reason == "by mail"
    page = client.get(url).content.decode()
    assert "by mail" in page and ERASED not in page
    res = client.post(url + "erase/", {"user_id": "nobody"}, follow=True)
    assert "nothing to erase" in res.content.decode()


def test_erase_user_refuses_bad_input(world):
    with pytest.raises(ErasureInvalid, match="give the user id"):
        erase_user(dataset=world["dataset"], user_id="", requested_by=None)
    with pytest.raises(ErasureInvalid, match="at most"):
        erase_user(dataset=world["dataset"], user_id="x" * 1001, requested_by=None)


def test_scrub_replaces_equal_strings_and_drops_samples_that_mention_the_id():
    value = {"samples": [{"values": {"text": "a,user-1,b"}}, {"values": {"text": "user-10"}}],
             "rows": [["user-1", 3], ["user-2", 4]], "label": "user-1x"}
    out, n = privacy.scrub(value, "user-1")
    assert out == {"samples": [{"values": {"text": "user-10"}}],
                   "rows": [["[erased]", 3], ["user-2", 4]], "label": "user-1x"}
    assert n == 2


@pytest.fixture
def broker():  # type: ignore[no-untyped-def]
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        pytest.skip("worker tests need Redis (CELERY_BROKER_URL=redis://...)")
    from config.celery import app

    app.control.purge()
    return url


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_after_the_erasure_published_finishes_it_exactly_once(
        team, tmp_path, broker):
    """Through a real worker on Redis: killed right after the store version is published;
    the redelivered job does not publish again and finishes the database side."""
    from worker_support import start_worker, stop, wait_for

    run_import(tmp_path)
    dataset = Dataset.objects.get(name="app")
    store = get_store()
    erasure, _ = erase_user(dataset=dataset, user_id=ERASED, requested_by=team["admin"])
    marker = tmp_path / "fault-fired"
    doomed = start_worker(broker, tmp_path, "doomed",
                          SEGMENT_PLANNER_FAULT=f"erase-after-publish:{marker}")
    try:
        doomed.wait(timeout=90)
    finally:
        stop(doomed)
    assert marker.exists()
    job = Job.objects.get(pk=erasure.job_id)
    assert (job.state, job.attempts) == ("running", 1)
    assert Erasure.objects.get(pk=erasure.pk).finished_at is None
    assert store.current(dataset.store_key).number == 2  # published, not yet recorded
    rescuer = start_worker(broker, tmp_path, "rescuer")
    try:
        wait_for(lambda: Erasure.objects.get(pk=erasure.pk).finished_at is not None,
                 what="the redelivered erasure to finish")
    finally:
        stop(rescuer)
    erasure.refresh_from_db()
    job.refresh_from_db()
    assert (job.state, job.attempts) == ("succeeded", 2)
    assert job.params == {"erasure_id": erasure.pk}
    assert store.current(dataset.store_key).number == 2  # no second version
    assert erasure.counts["events_removed"] == 2 and erasure.counts["store_version"] == 2
    assert "files_done" not in erasure.counts
    events = store.read_events(dataset.store_key)
    assert ERASED not in set(events["user_id"]) and len(events) == 2 * N - 1
    dataset.refresh_from_db()
    assert (dataset.version, dataset.total_events) == (2, 2 * N - 1)
