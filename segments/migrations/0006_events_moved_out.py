
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('events', '0001_initial'),
        ('planner', '0006_dataset_in_events'),
        ('segments', '0005_jobs_moved_out'),
    ]

    operations = [
        # The tables stay where they are: only Django's picture of the models moves.
        migrations.SeparateDatabaseAndState(state_operations=[
                migrations.RemoveConstraint(
                    model_name='dataset',
                    name='dataset_name_per_workspace',
                ),
                migrations.AlterField(
                    model_name='refresh',
                    name='dataset',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='refreshes', to='events.dataset'),
                ),
                migrations.RemoveField(
                    model_name='import',
                    name='dataset',
                ),
                migrations.AlterField(
                    model_name='segment',
                    name='dataset',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='segments', to='events.dataset'),
                ),
                migrations.AlterField(
                    model_name='behaviouranalysis',
                    name='dataset',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='behaviour_analyses', to='events.dataset'),
                ),
                migrations.RemoveField(
                    model_name='import',
                    name='created_by',
                ),
                migrations.RemoveField(
                    model_name='import',
                    name='job',
                ),
                migrations.RemoveField(
                    model_name='import',
                    name='workspace',
                ),
                migrations.RemoveField(
                    model_name='dataset',
                    name='workspace',
                ),
                migrations.DeleteModel(
                    name='Erasure',
                ),
                migrations.DeleteModel(
                    name='Import',
                ),
                migrations.DeleteModel(
                    name='Dataset',
                ),
        ]),
    ]
