"""The moved tables take this app's names; content types follow (permissions, admin history)."""

from django.db import migrations

from accounts.migration_ops import relabel_content_types

MOVED = ('job',)


class Migration(migrations.Migration):

    dependencies = [
        ("jobs", "0001_initial"),
        ("segments", "0005_jobs_moved_out"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelTable(name="job", table=None),
        relabel_content_types(MOVED, "segments", "jobs"),
    ]
