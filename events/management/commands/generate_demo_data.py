from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from events.demo import generate_demo, write_demo


class Command(BaseCommand):
    help = "Generate realistic demo events, users and their planted truths into a directory."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", type=Path, required=True, help="output directory")
        parser.add_argument("--users", type=int, default=50_000, help="number of users")
        parser.add_argument("--seed", type=int, default=7, help="random seed")
        parser.add_argument("--format", dest="fmt", default="csv", choices=["csv", "parquet"],
                            help="format of the events file")

    def handle(self, *args: Any, **opts: Any) -> None:
        """Generate the data, write it, print a one-line summary."""
        if opts["users"] < 1:
            raise CommandError("--users must be at least 1")
        data = generate_demo(users=opts["users"], seed=opts["seed"])
        paths = write_demo(data, opts["out"], fmt=opts["fmt"])
        self.stdout.write(f"{len(data.users):,} users, {len(data.events):,} events: "
                          + ", ".join(f"{name} {path}" for name, path in paths.items()))
