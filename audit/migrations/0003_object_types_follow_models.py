"""Recorded object types follow the models that moved to `experiments` (hypotheses and
experiments), so filtering the history by type finds the old entries too."""

from django.db import migrations

RENAMED = {"planner.hypothesis": "experiments.hypothesis",
           "planner.experiment": "experiments.experiment"}


def relabel(mapping: dict[str, str]):
    def run(apps, schema_editor):
        entry = apps.get_model("audit", "AuditEntry")
        for old, new in mapping.items():
            entry.objects.filter(object_type=old).update(object_type=new)
    return run


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0002_workspace_in_accounts"),
        ("experiments", "0002_rename_tables"),
    ]

    operations = [
        migrations.RunPython(relabel(RENAMED), relabel({v: k for k, v in RENAMED.items()})),
    ]
