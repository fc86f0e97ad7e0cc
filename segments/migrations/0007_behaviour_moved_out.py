
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('behaviour', '0001_initial'),
        ('segments', '0006_events_moved_out'),
    ]

    operations = [
        # The tables stay where they are: only Django's picture of the models moves.
        migrations.SeparateDatabaseAndState(state_operations=[
                migrations.DeleteModel(
                    name='BehaviourAnalysis',
                ),
        ]),
    ]
