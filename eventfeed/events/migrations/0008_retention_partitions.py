"""Retention overrides set on the storage page, and day partitions on PostgreSQL.

On PostgreSQL the events and resource tables become partitioned by day of `occurred`
(eventfeed/events/partitions.py): the rows are copied into the new tables and their indexes built
after, inside this migration's transaction, which keeps both tables locked meanwhile (README:
"Retention and storage" gives the time per million events). SQLite is left as it is.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from eventfeed.events.partitions import partition_existing

    partition_existing(schema_editor, [(apps.get_model("events", "Event"), "occurred"), (apps.get_model("events", "EventResource"), "occurred")])


class Migration(migrations.Migration):

    dependencies = [
        ('events', '0007_labels_without_role'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='RetentionOverride',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('pattern', models.CharField(max_length=1024, unique=True)),
                ('days', models.PositiveIntegerField()),
                ('updated', models.DateTimeField(auto_now=True)),
                ('updated_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['pattern'],
            },
        ),
        migrations.RunPython(partition),
    ]
