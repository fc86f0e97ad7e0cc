
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    """Hypothesis, HypothesisStatusChange, Experiment, ArmSummary, Learning move here from `planner`, on their old tables."""

    initial = True

    dependencies = [
        ('planner', '0006_dataset_in_events'),
        ('accounts', '0002_rename_tables'),
        ('events', '0002_rename_tables'),
        ('jobs', '0002_rename_tables'),
        ('segments', '0007_behaviour_moved_out'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The tables stay where they are: only Django's picture of the models moves.
        migrations.SeparateDatabaseAndState(state_operations=[
                migrations.CreateModel(
                    name='Hypothesis',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('statement', models.CharField(max_length=300)),
                        ('mechanism', models.TextField(blank=True)),
                        ('metric', models.CharField(blank=True, max_length=100)),
                        ('expected_lift', models.FloatField(default=0.0, help_text='relative, 0.10 = +10%')),
                        ('expected_lift_low', models.FloatField(blank=True, null=True)),
                        ('expected_lift_high', models.FloatField(blank=True, null=True)),
                        ('basis', models.TextField(blank=True, help_text='where the expected effect comes from')),
                        ('evidence', models.CharField(choices=[('assumption', 'Assumption (no data)'), ('observational', 'Observational / correlational'), ('experiment', 'One experiment'), ('replicated', 'Replicated experiments')], default='assumption', max_length=16)),
                        ('measured_lift', models.FloatField(blank=True, help_text='experiment estimate, replaces the expectation', null=True)),
                        ('measured_lift_low', models.FloatField(blank=True, null=True)),
                        ('measured_lift_high', models.FloatField(blank=True, null=True)),
                        ('status', models.CharField(choices=[('proposed', 'Proposed'), ('prioritized', 'Prioritized'), ('testing', 'Testing'), ('validated', 'Validated'), ('invalidated', 'Invalidated'), ('inconclusive', 'Inconclusive')], default='proposed', max_length=16)),
                        ('exploratory', models.BooleanField(default=False, help_text='logged after looking at the data: confirm before relying on it')),
                        ('guardrail_metrics', models.JSONField(blank=True, default=list, help_text='metrics that must not get worse')),
                        ('source', models.JSONField(blank=True, default=dict, help_text='where it came from, e.g. a behaviour-discovery result')),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('owner', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('segments', models.ManyToManyField(blank=True, related_name='hypotheses', to='segments.segment')),
                        ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='hypotheses', to='accounts.workspace')),
                    ],
                    options={
                    'db_table': 'planner_hypothesis',
                        'verbose_name_plural': 'hypotheses',
                        'ordering': ['-updated_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='Experiment',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=200)),
                        ('kind', models.CharField(choices=[('ab', 'Randomized A/B'), ('did', 'Difference-in-differences (quasi)'), ('its', 'Interrupted time series (quasi)')], default='ab', max_length=8)),
                        ('arms', models.JSONField(default=list, help_text='[{"name": "control", "weight": 0.5}, ...]; the first arm is the control')),
                        ('primary_metric', models.JSONField(default=dict, help_text='{"kind": "conversion", "event": "...", "window_days": 7}')),
                        ('guardrail_metrics', models.JSONField(blank=True, default=list)),
                        ('mde', models.FloatField(default=0.05, help_text='minimum detectable effect, relative')),
                        ('alpha', models.FloatField(default=0.05)),
                        ('power', models.FloatField(default=0.8)),
                        ('data_source', models.CharField(choices=[('events', 'Exposure events in the event store'), ('assignments', 'Uploaded assignment table (user, arm, time)'), ('summary', 'Per-arm summary statistics (n, sum, sum of squares)')], default='events', max_length=12)),
                        ('assignment', models.JSONField(blank=True, default=dict, help_text='{"event": "experiment_assigned", "experiment_key": "experiment", "experiment_id": "...", "arm_key": "arm"}')),
                        ('assignments_file', models.CharField(blank=True, max_length=500)),
                        ('assignments_rows', models.PositiveIntegerField(default=0)),
                        ('cuped_pre_days', models.FloatField(default=0.0, help_text='0 = no CUPED')),
                        ('sequential', models.BooleanField(default=False, help_text='always-valid intervals for teams that look early')),
                        ('correction', models.CharField(choices=[('holm', 'Holm'), ('bh', 'Benjamini-Hochberg'), ('none', 'None')], default='holm', max_length=8)),
                        ('quasi', models.JSONField(blank=True, default=dict, help_text='{"treated_segment": id, "control_segment": id, "launch": "2026-06-01", "period_days": 7, "pre_periods": 8, "post_periods": 8}')),
                        ('design', models.JSONField(blank=True, default=dict, help_text='power calculation')),
                        ('status', models.CharField(choices=[('design', 'Design'), ('running', 'Running'), ('analyzed', 'Analyzed'), ('concluded', 'Concluded')], default='design', max_length=10)),
                        ('result', models.JSONField(blank=True, default=dict)),
                        ('analyzed_at', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('analysis_job', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='jobs.job')),
                        ('breakdown_segments', models.ManyToManyField(blank=True, help_text='per-segment results', related_name='+', to='segments.segment')),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('dataset', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='experiments', to='events.dataset')),
                        ('segment', models.ForeignKey(blank=True, help_text='target segment: the analysis is restricted to it', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='experiments', to='segments.segment')),
                        ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='experiments', to='accounts.workspace')),
                        ('hypothesis', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='experiments', to='experiments.hypothesis')),
                    ],
                    options={
                    'db_table': 'planner_experiment',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='HypothesisStatusChange',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('from_status', models.CharField(choices=[('proposed', 'Proposed'), ('prioritized', 'Prioritized'), ('testing', 'Testing'), ('validated', 'Validated'), ('invalidated', 'Invalidated'), ('inconclusive', 'Inconclusive')], max_length=16)),
                        ('to_status', models.CharField(choices=[('proposed', 'Proposed'), ('prioritized', 'Prioritized'), ('testing', 'Testing'), ('validated', 'Validated'), ('invalidated', 'Invalidated'), ('inconclusive', 'Inconclusive')], max_length=16)),
                        ('changed_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('note', models.TextField(blank=True)),
                        ('changed_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('hypothesis', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='status_changes', to='experiments.hypothesis')),
                    ],
                    options={
                    'db_table': 'planner_hypothesisstatuschange',
                        'ordering': ['-changed_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='Learning',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('outcome', models.CharField(choices=[('validated', 'Validated'), ('invalidated', 'Invalidated'), ('inconclusive', 'Inconclusive')], max_length=16)),
                        ('believed', models.TextField(help_text='what we believed before')),
                        ('happened', models.TextField(help_text='what happened, with estimates and intervals')),
                        ('now_believe', models.TextField(help_text='what we believe now')),
                        ('decision', models.TextField(help_text='the decision taken')),
                        ('estimates', models.JSONField(blank=True, default=dict)),
                        ('tags', models.JSONField(blank=True, default=list)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('experiment', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='learnings', to='experiments.experiment')),
                        ('hypothesis', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='learnings', to='experiments.hypothesis')),
                        ('segments', models.ManyToManyField(blank=True, related_name='learnings', to='segments.segment')),
                        ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='learnings', to='accounts.workspace')),
                    ],
                    options={
                    'db_table': 'planner_learning',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='ArmSummary',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('arm', models.CharField(max_length=100)),
                        ('metric', models.CharField(max_length=100)),
                        ('scope', models.CharField(default='all', help_text='"all" or a segment label', max_length=100)),
                        ('n', models.PositiveIntegerField()),
                        ('sum', models.FloatField()),
                        ('sum_sq', models.FloatField()),
                        ('experiment', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='summaries', to='experiments.experiment')),
                    ],
                    options={
                    'db_table': 'planner_armsummary',
                        'ordering': ['experiment', 'scope', 'metric', 'arm'],
                        'constraints': [models.UniqueConstraint(fields=('experiment', 'arm', 'metric', 'scope'), name='one_summary_per_cell')],
                    },
                ),
                migrations.AddConstraint(
                    model_name='experiment',
                    constraint=models.UniqueConstraint(fields=('workspace', 'name'), name='experiment_name_per_workspace'),
                ),
        ]),
    ]
