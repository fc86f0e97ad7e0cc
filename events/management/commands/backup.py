from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from events.backup import BackupError, backup


class Command(BaseCommand):
    help = ("Back up the database and the event store together, consistently: every "
            "dataset's write lock is held while the database is dumped and the store versions "
            "it names are copied (see docs/DEPLOY.md, 'Backup and restore').")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", required=True, type=Path,
                            help="a new (or empty) folder for this backup")
        parser.add_argument("--lock-timeout", type=float, default=600.0,
                            help="seconds to wait for a running import or erasure to finish "
                                 "(default 600)")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            backup(opts["out"], lock_timeout=opts["lock_timeout"], log=self.stdout.write)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
