"""Workspaces, their members and roles, and API tokens: who may see and do what."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from .domains import in_range, within

# Number domains (README "Number domains").
MIN_SEGMENT_SIZE = (1, 1_000_000)  # users
REFRESH_EVERY_DAYS = (1, 3650)


class Role(models.TextChoices):
    VIEWER = "viewer"
    ANALYST = "analyst"
    COUNCIL = "council"
    ADMIN = "admin"


# What each role may do. Reading is open to every member.
ROLE_ACTIONS: dict[str, set[str]] = {
    Role.VIEWER: {"view"},
    Role.ANALYST: {"view", "import", "define"},
    Role.COUNCIL: {"view", "define", "decide"},
    Role.ADMIN: {"view", "import", "define", "decide", "manage"},
}


def user_link(related_name: str = "+") -> models.ForeignKey:
    """A link to the user who made, owns or changed a row: kept (as null) when the user is
    deleted, optional in forms, with no reverse accessor unless ``related_name`` names one."""
    return models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.SET_NULL, related_name=related_name)


class AuthoredRecord(models.Model):
    """A row someone made: who (``user_link``) and when; listed newest first."""

    created_by = user_link()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]


class Workspace(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership",
                                     related_name="workspaces")
    min_segment_size = models.PositiveIntegerField(
        default=10, validators=within(*MIN_SEGMENT_SIZE),
        help_text="segments smaller than this are hidden (privacy): 1 to 1,000,000 users")
    refresh_every_days = models.PositiveIntegerField(
        default=91, validators=within(*REFRESH_EVERY_DAYS),
        help_text="scheduled segment refresh cadence (quarterly by default): 1 to 3650 days")
    next_refresh_at = models.DateTimeField(null=True, blank=True)
    auto_refresh_segments = models.BooleanField(
        default=False, help_text="refresh the segments of a dataset automatically after each "
                                 "import that publishes a new version")
    shrink_forecasts = models.BooleanField(
        default=False, help_text="multiply new forecasts (expected lifts not yet measured) by "
                                 "the team's measured realized / predicted ratio")

    class Meta:
        ordering = ["name"]
        constraints = [in_range("min_segment_size", *MIN_SEGMENT_SIZE,
                                name="workspace_min_segment_size_range"),
                       in_range("refresh_every_days", *REFRESH_EVERY_DAYS,
                                name="workspace_refresh_every_days_range")]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="one_membership")]

    def can(self, action: str) -> bool:
        return action in ROLE_ACTIONS.get(self.role, set())

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"


class ApiToken(models.Model):
    """A named API token; only its hash is stored, the key is shown once at creation."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, *, user: object, name: str) -> tuple[ApiToken, str]:
        key = "spk_" + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, prefix=key[:12],
                                   key_hash=cls.hash_key(key))
        return token, key

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class WorkspaceVersion(models.Model):
    """A workspace's count of committed writes on one topic (``accounts.changes.touch``, in
    the writing transaction). A page cache's stamp reads it beside its counts and latest
    times: a write that commits after a later-timed one moves no maximum, but always moves
    this count (concurrent writers take turns on the row)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="versions")
    topic = models.CharField(max_length=40)
    version = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "topic"],
                                               name="workspace_version_topic_unique")]
