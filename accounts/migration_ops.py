"""A migration operation the app moves share: content types follow models to their new app.

In the lowest app, so every app's migrations may import it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import migrations


def _relabel(models: Sequence[str], from_app: str, to_app: str) -> Callable[[Any, Any], None]:
    def run(apps: Any, schema_editor: Any) -> None:
        content_type = apps.get_model("contenttypes", "ContentType")
        for model in models:
            # A row under the new label exists only if post_migrate ran in between: nothing
            # points at it yet, so it goes, and the old row (which permissions use) is renamed.
            old = content_type.objects.filter(app_label=from_app, model=model).first()
            if old is None:
                continue
            content_type.objects.filter(app_label=to_app, model=model).delete()
            old.app_label = to_app
            old.save(update_fields=["app_label"])
    return run


def relabel_content_types(models: Sequence[str], from_app: str,
                          to_app: str) -> migrations.RunPython:
    """Move the models' content types from ``from_app`` to ``to_app`` (reversible), so
    permissions, admin history and anything pointing at them stay attached."""
    return migrations.RunPython(_relabel(models, from_app, to_app),
                                _relabel(models, to_app, from_app))
