
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0001_initial'),
        ('planner', '0006_dataset_in_events'),
    ]

    operations = [
        # The tables stay where they are: only Django's picture of the models moves.
        migrations.SeparateDatabaseAndState(state_operations=[
                migrations.RemoveConstraint(
                    model_name='armsummary',
                    name='one_summary_per_cell',
                ),
                migrations.RemoveConstraint(
                    model_name='experiment',
                    name='experiment_name_per_workspace',
                ),
                migrations.RemoveField(
                    model_name='learning',
                    name='experiment',
                ),
                migrations.RemoveField(
                    model_name='hypothesis',
                    name='owner',
                ),
                migrations.RemoveField(
                    model_name='hypothesis',
                    name='segments',
                ),
                migrations.RemoveField(
                    model_name='hypothesis',
                    name='workspace',
                ),
                migrations.RemoveField(
                    model_name='learning',
                    name='hypothesis',
                ),
                migrations.RemoveField(
                    model_name='investment',
                    name='hypotheses',
                ),
                migrations.RemoveField(
                    model_name='learning',
                    name='created_by',
                ),
                migrations.RemoveField(
                    model_name='learning',
                    name='segments',
                ),
                migrations.RemoveField(
                    model_name='learning',
                    name='workspace',
                ),
                migrations.RemoveField(
                    model_name='armsummary',
                    name='experiment',
                ),
                migrations.RemoveField(
                    model_name='experiment',
                    name='analysis_job',
                ),
                migrations.RemoveField(
                    model_name='experiment',
                    name='breakdown_segments',
                ),
                migrations.RemoveField(
                    model_name='experiment',
                    name='created_by',
                ),
                migrations.RemoveField(
                    model_name='experiment',
                    name='dataset',
                ),
                migrations.RemoveField(
                    model_name='experiment',
                    name='hypothesis',
                ),
                migrations.RemoveField(
                    model_name='experiment',
                    name='segment',
                ),
                migrations.RemoveField(
                    model_name='experiment',
                    name='workspace',
                ),
                migrations.AddField(
                    model_name='investment',
                    name='hypotheses',
                    field=models.ManyToManyField(blank=True, related_name='investments', to='experiments.hypothesis'),
                ),
                migrations.DeleteModel(
                    name='HypothesisStatusChange',
                ),
                migrations.DeleteModel(
                    name='Learning',
                ),
                migrations.DeleteModel(
                    name='ArmSummary',
                ),
                migrations.DeleteModel(
                    name='Hypothesis',
                ),
                migrations.DeleteModel(
                    name='Experiment',
                ),
        ]),
    ]
