
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('planner', '0003_backlog_version_indexes'),
    ]

    operations = [
        # The tables stay where they are: only Django's picture of the models moves.
        migrations.SeparateDatabaseAndState(state_operations=[
                migrations.AlterField(
                    model_name='decision',
                    name='workspace',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='decisions', to='accounts.workspace'),
                ),
                migrations.AlterField(
                    model_name='experiment',
                    name='workspace',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='experiments', to='accounts.workspace'),
                ),
                migrations.AlterField(
                    model_name='hypothesis',
                    name='workspace',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='hypotheses', to='accounts.workspace'),
                ),
                migrations.AlterField(
                    model_name='investment',
                    name='workspace',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='investments', to='accounts.workspace'),
                ),
                migrations.AlterField(
                    model_name='learning',
                    name='workspace',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='learnings', to='accounts.workspace'),
                ),
                migrations.AlterField(
                    model_name='optimizationrun',
                    name='workspace',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='runs', to='accounts.workspace'),
                ),
                migrations.AlterField(
                    model_name='scenario',
                    name='workspace',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='scenarios', to='accounts.workspace'),
                ),
        ]),
    ]
