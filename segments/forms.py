from __future__ import annotations

from django import forms


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ImportForm(forms.Form):
    events = forms.FileField(required=False, help_text="CSV, Parquet or JSON Lines")
    users = forms.FileField(required=False, help_text="optional: one row per user with attributes")
    format = forms.ChoiceField(choices=[("auto", "detect"), ("csv", "CSV"), ("parquet", "Parquet"),
                                        ("jsonl", "JSON Lines")], initial="auto")
    timezone = forms.CharField(required=False, help_text="IANA zone for timestamps without offset")
    mapping = forms.CharField(required=False,
                              help_text='JSON, e.g. {"user_id": "customer", "timestamp": "ts"}')
