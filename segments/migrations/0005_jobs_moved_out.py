
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0001_initial'),
        ('planner', '0005_job_in_jobs'),
        ('segments', '0004_accounts_moved_out'),
    ]

    operations = [
        # The tables stay where they are: only Django's picture of the models moves.
        migrations.SeparateDatabaseAndState(state_operations=[
                migrations.AlterField(
                    model_name='refresh',
                    name='job',
                    field=models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='refresh', to='jobs.job'),
                ),
                migrations.AlterField(
                    model_name='behaviouranalysis',
                    name='job',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='jobs.job'),
                ),
                migrations.AlterField(
                    model_name='erasure',
                    name='job',
                    field=models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='erasure', to='jobs.job'),
                ),
                migrations.AlterField(
                    model_name='import',
                    name='job',
                    field=models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='import_record', to='jobs.job'),
                ),
                migrations.DeleteModel(
                    name='Job',
                ),
        ]),
    ]
