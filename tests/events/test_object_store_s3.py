"""The event store on a real S3-compatible server (moto in server mode, on 127.0.0.1).

Everything a refresh, an analysis, a fan-out, a clustering and an erasure reads or writes goes
through the store: the same work on a local store and on ``s3://`` gives equal results, the
uploads, member lists, cluster labels and versions are objects in the bucket, and nothing is
left on the local disk (the local folders stay empty; temporary files are the task's own and
deleted). Skipped only when moto (the ``dev`` extras) is not installed.
"""

from __future__ import annotations

import socket
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("moto.server", reason="moto[server] is in the dev extras (make install)")
pytest.importorskip("s3fs", reason="s3fs is in the dev extras (make install)")

from events.demo import generate_demo, write_demo  # noqa: E402

BUCKET = "planner-test"
ERASED = "u000003"
SEGMENTS = [
    ("team", "rule", {"attribute": "plan", "op": "eq", "value": "team"}),
    ("reporters", "rule", {"event": "report_created", "min_count": 2}),
    ("champions", "rfm", {"rfm": "Champions"}),
]
FUNNEL = {"steps": ["signup", "onboarding_completed", "report_created", "upgrade"],
          "window_days": 14.0, "mode": "ordered", "exclusions": [], "breakdown": "plan",
          "breakdown_segments": []}
RETENTION = {"cohort_by": "signup", "period": "week", "mode": "recurring", "return_on": "on",
             "max_periods": 8}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_options():  # type: ignore[no-untyped-def]
    """A moto S3 server on a free local port with one bucket; the store's fsspec options."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    options = {"endpoint_url": f"http://127.0.0.1:{port}", "key": "testing",
               "secret": "testing", "client_kwargs": {"region_name": "us-east-1"}}
    boto3.client("s3", endpoint_url=options["endpoint_url"], aws_access_key_id="testing",
                 aws_secret_access_key="testing", region_name="us-east-1",
                 ).create_bucket(Bucket=BUCKET)
    try:
        yield options
    finally:
        server.stop()


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) \
        if folder.exists() else []


def _run(team, tmp_path: Path, settings, capture, slug: str,  # type: ignore[no-untyped-def]
         segment_pks: list[int] | None = None) -> dict:
    """Upload, refresh (single, fan-out), analyses (single, fan-out), clusters, an erasure:
    everything the store serves, as the values a user sees."""
    from django.core.management import call_command
    from rest_framework.test import APIClient

    from accounts.models import Membership
    from behaviour import services as behaviour_services
    from events import services as event_services
    from events.models import Import
    from events.privacy_services import erase_user
    from jobs.models import Job
    from segments import segment_services
    from segments.models import Refresh, Segment

    workspace = team["acme"] if slug == "acme" else team["other"]
    admin = team["admin"]
    if slug != "acme":
        Membership.objects.create(workspace=workspace, user=admin, role="admin")
    dataset = event_services.dataset_create(workspace=workspace, name="demo")
    paths = write_demo(generate_demo(users=600, seed=7), tmp_path / f"demo-{slug}")
    client = APIClient()
    client.force_authenticate(user=admin)
    with open(paths["events"], "rb") as events, open(paths["users"], "rb") as users, \
            capture(execute=True):
        res = client.post("/api/v1/imports/", {"dataset": dataset.pk, "events": events,
                                               "users": users}, format="multipart")
    assert res.status_code == 202, res.content
    record = Import.objects.get(pk=res.json()["id"])
    assert (record.status, record.rows_added) == ("succeeded", record.rows_kept)
    dataset.refresh_from_db()
    dataset.outcome_event = "upgrade"
    dataset.save(update_fields=["outcome_event"])
    for (name, kind, definition), pk in zip(SEGMENTS, segment_pks or [None] * len(SEGMENTS),
                                            strict=True):
        segment = segment_services.segment_create(dataset=dataset, name=name, kind=kind,
                                                  definition=definition)
        if pk is not None:  # the fan-out's bootstrap seeds are per segment id: the same ids
            Segment.objects.filter(pk=segment.pk).update(id=pk)

    out: dict = {"import": {"rows_added": record.rows_added, "version": dataset.version,
                            "total_users": dataset.total_users},
                 "paths": [record.events_path, record.users_path]}
    for mode in ("off", "on"):
        settings.FANOUT = mode
        with capture(execute=True):
            call_command("refresh_segments", workspace=workspace.slug)
        refresh = Refresh.objects.filter(dataset=dataset).order_by("-id").first()
        assert Job.objects.get(pk=refresh.job_id).state == "succeeded"
        out[f"refresh-{mode}"] = _stored(refresh)
        for kind, params in (("funnel", FUNNEL), ("retention", RETENTION)):
            with capture(execute=True):
                analysis = behaviour_services.analysis_start(dataset=dataset, kind=kind,
                                                             params=params)
            analysis.refresh_from_db()
            assert Job.objects.get(pk=analysis.job_id).state == "succeeded", (kind, mode)
            out[f"{kind}-{mode}"] = analysis.result
            analysis.delete()  # the next mode computes again (no cached result)
    settings.FANOUT = "off"

    with capture(execute=True):
        cluster_job = segment_services.clusters_start(dataset=dataset)
    cluster_job.refresh_from_db()
    assert cluster_job.state == "succeeded", cluster_job.error
    out["clusters"] = {k: v for k, v in cluster_job.result.items() if k != "dataset_id"}
    labels = len(cluster_job.result["clusters"])
    members = {label: sorted(segment_services.cluster_members(job=cluster_job, label=label))
               for label in range(labels)}
    out["cluster_members"] = members
    erased_label = next(label for label, ids in members.items() if ERASED in ids)
    last = Refresh.objects.filter(dataset=dataset).order_by("-id").first()
    assert ERASED in set(_stored(last)["team"]["members"]) | \
        set(_stored(last)["reporters"]["members"]) | set(_stored(last)["champions"]["members"])

    with capture(execute=True):
        erasure, created = erase_user(dataset=dataset, user_id=ERASED, requested_by=admin)
    erasure.refresh_from_db()
    assert created and erasure.finished_at is not None
    out["erasure"] = erasure.counts
    store = event_services.get_store()
    events = store.read_events(dataset.store_key, columns=["user_id"])
    out["after_erasure"] = {
        "events": len(events), "erased_left": int((events["user_id"] == ERASED).sum()),
        "users": sorted(store.read_users(dataset.store_key)["user_id"])[:5],
        "snapshot": _stored(last),
        "cluster": sorted(segment_services.cluster_members(job=cluster_job,
                                                           label=erased_label)),
        "uploads_left": [event_services.upload_exists(p) for p in out.pop("paths")],
    }
    out["store"] = store
    out["dataset"] = dataset
    out["segment_pks"] = sorted(Segment.objects.filter(dataset=dataset, kind__in=["rule", "rfm"])
                                .values_list("pk", flat=True))
    out["cluster_job"] = cluster_job
    return out


def _stored(refresh) -> dict:  # type: ignore[no-untyped-def]
    from segments.segment_services import snapshot_members

    out = {"baseline": refresh.baseline, "as_of": refresh.as_of,
           "summary": {k: v for k, v in refresh.summary.items() if k != "rank_changes"}}
    for snap in refresh.snapshots.order_by("segment_id"):
        out[snap.segment.name] = {
            "size": snap.size, "share": snap.share, "signals": snap.signals,
            "holdout": snap.holdout, "retention": repr(snap.retention),
            "warnings": snap.warnings, "members": sorted(snapshot_members(snap).tolist())}
    return out


@pytest.mark.django_db
def test_everything_runs_on_s3_as_on_a_local_store(team, tmp_path, settings, s3_options,
                                                   django_capture_on_commit_callbacks,
                                                   monkeypatch):
    capture = django_capture_on_commit_callbacks
    # The local run: a local store (the suite's default, a folder of tmp_path).
    local = _run(team, tmp_path / "local-run", settings, capture, "acme")

    # The same work on S3, with a fresh local var folder and a private temporary folder,
    # both checked afterwards.
    var = tmp_path / "var"
    systmp = tmp_path / "systmp"
    systmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(systmp))
    settings.VAR_DIR = var
    prefix = f"store-{uuid.uuid4().hex[:8]}"
    settings.EVENT_STORE = f"s3://{BUCKET}/{prefix}"
    settings.EVENT_STORE_OPTIONS = s3_options
    from events.services import forget_loaded_events
    from segments.models import Segment

    forget_loaded_events()
    segment_pks = local.pop("segment_pks")
    Segment.objects.filter(pk__in=segment_pks).delete()
    remote = _run(team, tmp_path / "s3-run", settings, capture, "other", segment_pks)
    assert remote.pop("segment_pks") == segment_pks

    store, dataset, cluster_job = remote.pop("store"), remote.pop("dataset"), \
        remote.pop("cluster_job")
    local_store = local.pop("store")
    local.pop("dataset"), local.pop("cluster_job")
    assert store.fs is not None and local_store.fs is None

    # Equal results, exactly: import, both refreshes, both analyses, clusters, erasure.
    assert remote.keys() == local.keys()
    for key in local:
        assert remote[key] == local[key], key
    # The work did something (not two empty results).
    assert local["import"]["total_users"] == 600
    assert local["refresh-off"]["team"]["size"] > 0 and local["refresh-on"]["champions"]["size"] > 0
    assert local["funnel-on"] and local["retention-on"]
    assert local["erasure"]["events_removed"] > 0 and local["erasure"]["users_removed"] == 1
    assert local["erasure"]["results"]["snapshot_files"] >= 2
    assert local["erasure"]["results"]["cluster_files"] == 1
    assert local["erasure"]["results"]["raw_uploads_deleted"] == 2
    assert local["after_erasure"]["erased_left"] == 0
    assert local["after_erasure"]["uploads_left"] == [False, False]
    assert all(ERASED not in s.get("members", []) for s in
               local["after_erasure"]["snapshot"].values() if isinstance(s, dict))
    assert ERASED not in local["after_erasure"]["cluster"]

    # In the bucket: the dataset's version, the member lists, the cluster labels; no work
    # parts left; the erased user's uploads deleted.
    fs, base = store.fs, store.base
    names = sorted(str(p)[len(base) + 1:] for p in fs.find(base))
    key = dataset.store_key
    assert f"{key}/CURRENT" in names
    assert sum(n.startswith(f"{key}/v") and n.endswith("/manifest.json") for n in names) == 1
    assert any(n.startswith(f"snapshots/{key}/refresh-") for n in names)
    assert f"clusters/job-{cluster_job.pk}.parquet" in names
    assert not any(n.startswith(".work/") for n in names)
    assert not any(n.startswith("uploads/") for n in names)
    current = store.current(key)
    assert current.manifest["total_users"] == 599
    assert np.all(store.read_events(key, columns=["user_id"])["user_id"] != ERASED)

    # Nothing on the local disk: no var folder content, no temporary file left (the only
    # entries of the private temporary folder: the SQLite run's empty lock files).
    assert _files(var) == []
    left = [f for f in _files(systmp) if not f.startswith("segment-planner-locks/")]
    assert left == []
    assert all((systmp / f).stat().st_size == 0 for f in _files(systmp))
