"""What the apps' forms share: a model form for one workspace's objects."""

from __future__ import annotations

from typing import Any

from django import forms


class WorkspaceModelForm(forms.ModelForm):
    """A model form for an object of ``workspace`` (subclasses limit their choices to it);
    ``save_owned`` saves the object there, a new one owned by the user who creates it."""

    def __init__(self, *args: Any, workspace: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workspace = workspace

    def save_owned(self, user: Any) -> Any:
        obj = self.save(commit=False)
        obj.workspace = self.workspace
        if obj.pk is None:
            obj.owner = user
        obj.save()
        self.save_m2m()
        return obj
