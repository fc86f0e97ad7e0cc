from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.management.workspace import workspace_from_options
from accounts.models import Workspace
from events import services
from events.ingest import ImportRejected
from events.models import Dataset, Import
from jobs.services import job_run
from security import bodies, uploads

# The command line reads the operator's own files: no size limit (the API's is MAX_UPLOAD_BYTES).
NO_LIMIT = 1 << 62


def copy_file(path: Path, *, workspace: Workspace, field: str) -> tuple[Path, str]:
    """Keep a copy of the file under its sha256 like an upload; gzip-compressed text
    (.csv.gz, .jsonl.gz, .json.gz) is checked and decompressed as the API does it."""
    if not path.name.lower().endswith(".gz"):
        return services.copy_to_uploads(path, workspace=workspace)
    with open(path, "rb") as handle:
        stream, name = uploads.event_upload(File(handle, name=path.name), field=field,
                                            limit=NO_LIMIT)
        stored, _ = services.save_upload(stream, name=name, workspace=workspace)
    return stored, path.name


class Command(BaseCommand):
    help = "Import an events file (and optionally a users file) into a workspace's dataset."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", required=True, help="workspace slug")
        parser.add_argument("--events", type=Path,
                            help="CSV, Parquet or JSON Lines file (.csv.gz, .jsonl.gz: gzip)")
        parser.add_argument("--users", type=Path, help="users file with attributes")
        parser.add_argument("--dataset", default="events", help="dataset name (created if new)")
        parser.add_argument("--format", default="auto", choices=["auto", "csv", "parquet", "jsonl"])
        parser.add_argument("--timezone", default="", help="IANA zone for naive timestamps")
        parser.add_argument("--mapping", default="", help='JSON, e.g. {"user_id": "customer"}')
        parser.add_argument("--pseudonymize", action="store_true",
                            help="replace user ids by HMAC-SHA256 with PSEUDONYMIZATION_KEY")
        parser.add_argument("--async", dest="run_async", action="store_true",
                            help="only queue the job for the worker")

    def handle(self, *args: Any, **opts: Any) -> None:
        workspace = workspace_from_options(opts)
        if not opts["events"] and not opts["users"]:
            raise CommandError("give --events, --users or both")
        for key in ("events", "users"):
            if opts[key] and not opts[key].is_file():
                raise CommandError(f"--{key}: {opts[key]} is not a file")
        try:
            mapping = bodies.loads(opts["mapping"]) if opts["mapping"] else {}
        except ValueError as exc:
            raise CommandError(f"--mapping is not valid JSON: {exc}") from None
        dataset, _ = Dataset.objects.get_or_create(workspace=workspace, name=opts["dataset"])
        try:
            files = {key: copy_file(opts[key], workspace=workspace, field=f"--{key}")
                     for key in ("events", "users") if opts[key]}
            record, created = services.import_create(
                dataset=dataset, user=None, events=files.get("events"), users=files.get("users"),
                options={"format": opts["format"], "timezone": opts["timezone"],
                         "mapping": mapping, "pseudonymize": opts["pseudonymize"]},
            )
        except ImportRejected as exc:
            raise CommandError(str(exc)) from None
        except uploads.UploadRefused as exc:
            raise CommandError(f"{exc.where}: {exc.message}") from None
        if not created:
            self.stdout.write(f"already imported as import #{record.pk}; nothing added")
            return
        if opts["run_async"]:
            self.stdout.write(f"queued import #{record.pk} (job #{record.job_id})")
            return
        job_run(job_id=record.job_id)
        record = Import.objects.get(pk=record.pk)
        if record.status != "succeeded":
            err = record.error or {"message": record.job.error if record.job else "unknown"}
            raise CommandError(f"import #{record.pk} {record.status}: {err.get('code', '')} "
                               f"{err.get('message', '')} {err.get('where', '')}".strip())
        self.stdout.write(
            f"import #{record.pk}: {record.rows_read:,} rows read, {record.rows_kept:,} kept, "
            f"{record.rows_added:,} new events; dataset v{record.dataset_version}"
        )
