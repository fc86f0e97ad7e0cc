
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    """BehaviourAnalysis move here from `segments`, on their old tables."""

    initial = True

    dependencies = [
        ('segments', '0006_events_moved_out'),
        ('accounts', '0002_rename_tables'),
        ('events', '0002_rename_tables'),
        ('jobs', '0002_rename_tables'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The tables stay where they are: only Django's picture of the models moves.
        migrations.SeparateDatabaseAndState(state_operations=[
                migrations.CreateModel(
                    name='BehaviourAnalysis',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('funnel', 'Funnel'), ('paths', 'Paths'), ('retention', 'Retention cohorts'), ('discovery', 'High-value behaviour discovery')], max_length=12)),
                        ('params', models.JSONField(default=dict)),
                        ('dataset_version', models.PositiveIntegerField()),
                        ('input_hash', models.CharField(db_index=True, max_length=64)),
                        ('result', models.JSONField(blank=True, default=dict)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('dataset', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='behaviour_analyses', to='events.dataset')),
                        ('job', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='jobs.job')),
                        ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='behaviour_analyses', to='accounts.workspace')),
                    ],
                    options={
                    'db_table': 'segments_behaviouranalysis',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
        ]),
    ]
