"""Writes scoped to a workspace: create where the caller's role allows, related objects from that
workspace only."""


from __future__ import annotations

from django.db import IntegrityError, transaction
from rest_framework.exceptions import ValidationError

from accounts import selectors as ws_selectors
from accounts.api.permissions import require_role


class ScopedWrites:
    """Create in a workspace the caller may `action` in; related objects from that workspace."""

    # (A comment, not the docstring: the API schema shows the docstring.) ``check_write`` sees
    # every write once the workspace is known and allowed (checks that read the workspace's
    # rows); a write and what ``saved_hook`` does after it are one transaction.

    write_action = "define"
    related_fields: tuple[str, ...] = ()

    def _workspace_for_create(self, serializer):  # type: ignore[no-untyped-def]
        workspace, _ = ws_selectors.workspace_get(self.request.user,
                                                   serializer.validated_data.pop("workspace"))
        require_role(self.request.user, workspace.pk, self.write_action)
        return workspace

    def _check_related(self, serializer, workspace) -> None:  # type: ignore[no-untyped-def]
        for name in self.related_fields:
            for obj in serializer.validated_data.get(name, []):
                if obj.workspace_id != workspace.pk:
                    raise ValidationError({name: [f"{obj.pk} is not in this workspace"]})

    def perform_create(self, serializer):  # type: ignore[no-untyped-def]
        workspace = self._workspace_for_create(serializer)
        self._check_related(serializer, workspace)
        self.check_write(serializer, workspace)
        try:
            with transaction.atomic():
                self.saved = serializer.save(workspace=workspace, **self.extra_create())
                self.saved_hook()
        except IntegrityError:
            raise ValidationError({"name": ["already exists in this workspace"]}) from None

    def perform_update(self, serializer):  # type: ignore[no-untyped-def]
        require_role(self.request.user, serializer.instance.workspace_id, self.write_action)
        self._check_related(serializer, serializer.instance.workspace)
        self.check_write(serializer, serializer.instance.workspace)
        with transaction.atomic():
            self.saved = serializer.save()
            self.saved_hook()

    def check_write(self, serializer, workspace) -> None:  # type: ignore[no-untyped-def]
        """Refuse a write (raise ValidationError) with what only the workspace can tell."""

    def saved_hook(self) -> None:
        """Work after the save, in its transaction (``self.saved`` is the saved object)."""

    def perform_destroy(self, instance):  # type: ignore[no-untyped-def]
        require_role(self.request.user, instance.workspace_id, self.write_action)
        instance.delete()

    def extra_create(self) -> dict:
        return {}
