"""The event counts are partitioned by day of `bucket` like the events (PostgreSQL only), so that
retention drops a day's counts with its events instead of deleting ~70,000 minute buckets a day.

The table is small next to the events (a row per name per minute at most): this takes seconds.
"""

from django.db import migrations


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from eventfeed.events.partitions import partition_existing

    partition_existing(schema_editor, [(apps.get_model("events", "EventCount"), "bucket")])


class Migration(migrations.Migration):

    dependencies = [
        ("events", "0008_retention_partitions"),
    ]

    operations = [
        migrations.RunPython(partition),
    ]
