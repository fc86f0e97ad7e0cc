"""The moved tables take this app's names; content types follow (permissions, admin history)."""

from django.db import migrations

MOVED = ('hypothesis', 'hypothesisstatuschange', 'experiment', 'armsummary', 'learning')


def relabel(from_app: str, to_app: str):
    def run(apps, schema_editor):
        content_type = apps.get_model("contenttypes", "ContentType")
        for model in MOVED:
            # A row under the new label exists only if post_migrate ran in between: nothing
            # points at it yet, so it goes, and the old row (which permissions use) is renamed.
            old = content_type.objects.filter(app_label=from_app, model=model).first()
            if old is None:
                continue
            content_type.objects.filter(app_label=to_app, model=model).delete()
            old.app_label = to_app
            old.save(update_fields=["app_label"])
    return run


class Migration(migrations.Migration):

    dependencies = [
        ("experiments", "0001_initial"),
        ("planner", "0007_experiments_moved_out"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelTable(name="hypothesis", table=None),
        migrations.AlterModelTable(name="hypothesisstatuschange", table=None),
        migrations.AlterModelTable(name="experiment", table=None),
        migrations.AlterModelTable(name="armsummary", table=None),
        migrations.AlterModelTable(name="learning", table=None),
        migrations.RunPython(relabel("planner", "experiments"), relabel("experiments", "planner")),
    ]
