"""The moved tables take this app's names; content types follow (permissions, admin history)."""

from django.db import migrations

from accounts.migration_ops import relabel_content_types

MOVED = ('dataset', 'import', 'erasure')


class Migration(migrations.Migration):

    dependencies = [
        ("events", "0001_initial"),
        ("segments", "0006_events_moved_out"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelTable(name="dataset", table=None),
        migrations.AlterModelTable(name="import", table=None),
        migrations.AlterModelTable(name="erasure", table=None),
        relabel_content_types(MOVED, "segments", "events"),
    ]
