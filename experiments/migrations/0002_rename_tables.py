"""The moved tables take this app's names; content types follow (permissions, admin history)."""

from django.db import migrations

from accounts.migration_ops import relabel_content_types

MOVED = ('hypothesis', 'hypothesisstatuschange', 'experiment', 'armsummary', 'learning')


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
        relabel_content_types(MOVED, "planner", "experiments"),
    ]
