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
    pseudonymize = forms.BooleanField(
        required=False, help_text="store a keyed hash of each user id instead of the id "
                                  "(needs PSEUDONYMIZATION_KEY on the server)")


class ErasureForm(forms.Form):
    user_id = forms.CharField(max_length=1000, label="User id",
                              help_text="the id as imported (a pseudonymized dataset accepts the "
                                        "raw id or its pseudonym)")
    reason = forms.CharField(required=False, max_length=1000,
                             help_text="e.g. the request's reference")
