
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('events', '0001_initial'),
        ('planner', '0005_job_in_jobs'),
    ]

    operations = [
        # The tables stay where they are: only Django's picture of the models moves.
        migrations.SeparateDatabaseAndState(state_operations=[
                migrations.AlterField(
                    model_name='experiment',
                    name='dataset',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='experiments', to='events.dataset'),
                ),
        ]),
    ]
