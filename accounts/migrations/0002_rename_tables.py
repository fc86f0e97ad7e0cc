"""The moved tables take this app's names; content types follow, so permissions, admin history
and anything pointing at them stay attached."""

from django.db import migrations

from accounts.migration_ops import relabel_content_types

MOVED = ("workspace", "membership", "apitoken")


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
        relabel_content_types(MOVED, "segments", "accounts"),
    ]
