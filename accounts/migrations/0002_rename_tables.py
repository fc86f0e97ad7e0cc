"""The moved tables take this app's names; content types follow, so permissions, admin history
and anything pointing at them stay attached."""

from django.db import migrations

MOVED = ("workspace", "membership", "apitoken")


def relabel(from_app: str, to_app: str):
    def run(apps, schema_editor):
        content_type = apps.get_model("contenttypes", "ContentType")
        for model in MOVED:
            # A row under the new label can only exist if post_migrate ran in between: drop it
            # (nothing points at it yet) and keep the old row, which permissions point at.
            old = content_type.objects.filter(app_label=from_app, model=model).first()
            if old is None:
                continue
            content_type.objects.filter(app_label=to_app, model=model).delete()
            old.app_label = to_app
            old.save(update_fields=["app_label"])
    return run


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0001_initial"),
        ("segments", "0004_accounts_moved_out"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelTable(name="workspace", table=None),
        migrations.AlterModelTable(name="membership", table=None),
        migrations.AlterModelTable(name="apitoken", table=None),
        migrations.RunPython(relabel("segments", "accounts"), relabel("accounts", "segments")),
    ]
