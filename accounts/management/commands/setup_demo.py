from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from accounts.models import Membership, Role, Workspace

DEMO_USERS = [
    ("demo", Role.ADMIN),
    ("analyst", Role.ANALYST),
    ("council", Role.COUNCIL),
    ("viewer", Role.VIEWER),
]


class Command(BaseCommand):
    help = "Create the demo workspace and one login per role (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", default="demo")
        parser.add_argument("--password", default="demo-pass-2026")

    def handle(self, *args: Any, **opts: Any) -> None:
        workspace, _ = Workspace.objects.get_or_create(
            slug=opts["workspace"], defaults={"name": "Demo SaaS product"})
        user_model = get_user_model()
        for username, role in DEMO_USERS:
            user, created = user_model.objects.get_or_create(username=username)
            if created or not user.has_usable_password():
                user.set_password(opts["password"])
            user.is_staff = user.is_superuser = username == "demo"
            user.save()
            Membership.objects.update_or_create(workspace=workspace, user=user,
                                                defaults={"role": role})
        self.stdout.write(f"workspace '{workspace.slug}'; logins: "
                          + ", ".join(f"{u} ({r})" for u, r in DEMO_USERS)
                          + f"; password: {opts['password']}")
