
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    """Dataset, Erasure, Import move here from `segments`, on their old tables."""

    initial = True

    dependencies = [
        ('segments', '0005_jobs_moved_out'),
        ('accounts', '0002_rename_tables'),
        ('jobs', '0002_rename_tables'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The tables stay where they are: only Django's picture of the models moves.
        migrations.SeparateDatabaseAndState(state_operations=[
                migrations.CreateModel(
                    name='Dataset',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=200)),
                        ('description', models.TextField(blank=True)),
                        ('version', models.PositiveIntegerField(default=0, help_text='published event-store version')),
                        ('total_events', models.BigIntegerField(default=0)),
                        ('total_users', models.BigIntegerField(default=0)),
                        ('outcome_event', models.CharField(blank=True, help_text='the event counted as conversion (e.g. upgrade)', max_length=200)),
                        ('event_catalog', models.JSONField(blank=True, default=list)),
                        ('attribute_catalog', models.JSONField(blank=True, default=list)),
                        ('id_mode', models.CharField(blank=True, choices=[('', 'Not set yet'), ('raw', 'Raw user ids'), ('pseudonymized', 'Pseudonymized (keyed hash)')], default='', help_text='how user ids are stored; set by the first import, never mixed', max_length=16)),
                        ('pseudonym_key_check', models.CharField(blank=True, help_text='a keyed check value of the pseudonymization key (not the key)', max_length=16)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='datasets', to='accounts.workspace')),
                    ],
                    options={
                    'db_table': 'segments_dataset',
                        'ordering': ['name'],
                    },
                ),
                migrations.CreateModel(
                    name='Erasure',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('dataset_name', models.CharField(blank=True, max_length=200)),
                        ('user_hash', models.CharField(max_length=100)),
                        ('reason', models.TextField(blank=True)),
                        ('counts', models.JSONField(blank=True, default=dict, help_text='events and attributes removed, results touched, the new store version')),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('dataset', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='erasures', to='events.dataset')),
                        ('job', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='erasure', to='jobs.job')),
                        ('requested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='erasures', to='accounts.workspace')),
                    ],
                    options={
                    'db_table': 'segments_erasure',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='Import',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('rejected', 'Rejected'), ('failed', 'Failed')], db_index=True, default='pending', max_length=16)),
                        ('events_name', models.CharField(blank=True, max_length=255)),
                        ('users_name', models.CharField(blank=True, max_length=255)),
                        ('events_path', models.CharField(blank=True, max_length=500)),
                        ('users_path', models.CharField(blank=True, max_length=500)),
                        ('input_hash', models.CharField(db_index=True, help_text="sha256 of the files' bytes and the options", max_length=64)),
                        ('options', models.JSONField(blank=True, default=dict)),
                        ('report', models.JSONField(blank=True, default=dict)),
                        ('error', models.JSONField(blank=True, default=dict)),
                        ('rows_read', models.BigIntegerField(default=0)),
                        ('rows_kept', models.BigIntegerField(default=0)),
                        ('rows_added', models.BigIntegerField(default=0)),
                        ('dataset_version', models.PositiveIntegerField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('dataset', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='imports', to='events.dataset')),
                        ('job', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='import_record', to='jobs.job')),
                        ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='imports', to='accounts.workspace')),
                    ],
                    options={
                    'db_table': 'segments_import',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
                migrations.AddConstraint(
                    model_name='dataset',
                    constraint=models.UniqueConstraint(fields=('workspace', 'name'), name='dataset_name_per_workspace'),
                ),
        ]),
    ]
