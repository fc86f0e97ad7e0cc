
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('audit', '0002_workspace_in_accounts'),
        ('integrations', '0002_workspace_in_accounts'),
        ('planner', '0004_workspace_in_accounts'),
        ('segments', '0003_privacy'),
    ]

    operations = [
        # The tables stay where they are: only Django's picture of the models moves.
        migrations.SeparateDatabaseAndState(state_operations=[
                migrations.RemoveField(
                    model_name='apitoken',
                    name='user',
                ),
                migrations.RemoveConstraint(
                    model_name='membership',
                    name='one_membership',
                ),
                migrations.RemoveField(
                    model_name='workspace',
                    name='members',
                ),
                migrations.AlterField(
                    model_name='refresh',
                    name='workspace',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='refreshes', to='accounts.workspace'),
                ),
                migrations.AlterField(
                    model_name='segmentsnapshot',
                    name='workspace',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.workspace'),
                ),
                migrations.AlterField(
                    model_name='import',
                    name='workspace',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='imports', to='accounts.workspace'),
                ),
                migrations.AlterField(
                    model_name='dataset',
                    name='workspace',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='datasets', to='accounts.workspace'),
                ),
                migrations.AlterField(
                    model_name='job',
                    name='workspace',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='jobs', to='accounts.workspace'),
                ),
                migrations.AlterField(
                    model_name='erasure',
                    name='workspace',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='erasures', to='accounts.workspace'),
                ),
                migrations.AlterField(
                    model_name='behaviouranalysis',
                    name='workspace',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='behaviour_analyses', to='accounts.workspace'),
                ),
                migrations.AlterField(
                    model_name='segment',
                    name='workspace',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='segments', to='accounts.workspace'),
                ),
                migrations.DeleteModel(
                    name='ApiToken',
                ),
                migrations.DeleteModel(
                    name='Membership',
                ),
                migrations.DeleteModel(
                    name='Workspace',
                ),
        ]),
    ]
