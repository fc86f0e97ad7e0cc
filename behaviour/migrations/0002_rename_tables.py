"""The moved tables take this app's names; content types follow (permissions, admin history)."""

from django.db import migrations

from accounts.migration_ops import relabel_content_types

MOVED = ('behaviouranalysis',)


class Migration(migrations.Migration):

    dependencies = [
        ("behaviour", "0001_initial"),
        ("segments", "0007_behaviour_moved_out"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelTable(name="behaviouranalysis", table=None),
        relabel_content_types(MOVED, "segments", "behaviour"),
    ]
