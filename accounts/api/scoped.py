"""Writes scoped to a workspace: create where the caller's role allows, related objects from that
workspace only."""


from __future__ import annotations

from django.db import IntegrityError
from rest_framework.exceptions import ValidationError

from accounts import selectors as ws_selectors
from accounts.api.permissions import require_role


class ScopedWrites:
    """Create in a workspace the caller may `action` in; related objects from that workspace."""

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
        try:
            self.saved = serializer.save(workspace=workspace, **self.extra_create())
        except IntegrityError:
            raise ValidationError({"name": ["already exists in this workspace"]}) from None

    def perform_update(self, serializer):  # type: ignore[no-untyped-def]
        require_role(self.request.user, serializer.instance.workspace_id, self.write_action)
        self._check_related(serializer, serializer.instance.workspace)
        self.saved = serializer.save()

    def perform_destroy(self, instance):  # type: ignore[no-untyped-def]
        require_role(self.request.user, instance.workspace_id, self.write_action)
        instance.delete()

    def extra_create(self) -> dict:
        return {}
