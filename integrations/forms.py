from __future__ import annotations

from django import forms

from .models import WebhookEvent


class WebhookForm(forms.Form):
    url = forms.CharField(label="Endpoint URL", max_length=2000,
                          help_text="http:// or https:// on a public address; receives a signed POST per event",
                          widget=forms.TextInput(attrs={"placeholder": "https://example.com/hooks/planner"}))
    events = forms.MultipleChoiceField(choices=WebhookEvent.choices,
                                       widget=forms.CheckboxSelectMultiple,
                                       error_messages={"required": "choose at least one event"})
    description = forms.CharField(max_length=200, required=False)
