from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from events.backup import BackupError, read_manifest, restore, verify


class Command(BaseCommand):
    help = ("Restore a backup made by 'backup' into an empty database and event store: "
            "migrate, put the store versions and files back, load the database, check that "
            "every dataset's version is there (see docs/DEPLOY.md, 'Backup and restore').")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="source", required=True, type=Path,
                            help="the backup folder")
        parser.add_argument("--force", action="store_true",
                            help="restore over existing data: the database is flushed and the "
                                 "store's content is moved aside first")
        parser.add_argument("--check", action="store_true",
                            help="only verify the backup (files, checksums, migrations); "
                                 "change nothing")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            if opts["check"]:
                manifest = read_manifest(opts["source"])
                verify(opts["source"], manifest)
                datasets = ", ".join(f"{d['workspace']}/{d['name']} v{d['version']}"
                                     for d in manifest["datasets"]) or "none"
                self.stdout.write(
                    f"backup of {manifest['created_at']} verifies: {len(manifest['files'])} "
                    f"files and the database dump match their checksums; datasets: {datasets}")
                return
            restore(opts["source"], force=opts["force"], log=self.stdout.write)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
