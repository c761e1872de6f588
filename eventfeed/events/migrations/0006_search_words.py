"""Free text moves from a trigram index over a `search` text column to a word index.

Stored events get their words here, a few thousand at a time, before the index is built: one
index build is much cheaper than an index kept up to date row by row.
"""

import eventfeed.events.models
from django.db import migrations

BATCH = 5000


def fill_words(apps, schema_editor):
    from eventfeed.events.models import words_sql
    from eventfeed.events.schema import search_words

    Event = apps.get_model("events", "Event")
    vendor = schema_editor.connection.vendor
    table = Event._meta.db_table
    last = None
    with schema_editor.connection.cursor() as cursor:
        while True:
            events = Event.objects.order_by("id").only("id", "event", "resource", "related", "payload")
            if last is not None:
                events = events.filter(id__gt=last)
            batch = list(events[:BATCH])
            if not batch:
                return
            cursor.executemany(
                f"UPDATE {table} SET words = %s WHERE id = %s",
                [(words_sql(search_words(e.event, e.resource, e.related, e.payload), vendor), e.id.hex if vendor != "postgresql" else e.id)
                 for e in batch],
            )
            last = batch[-1].id


class Migration(migrations.Migration):

    dependencies = [
        ("events", "0005_label_index_quarter_hour_counts"),
    ]

    operations = [
        migrations.AddField(
            model_name="event",
            name="words",
            field=eventfeed.events.models.WordsField(default=list),
        ),
        migrations.RunPython(fill_words, migrations.RunPython.noop),
        migrations.RemoveIndex(model_name="event", name="ev_search_trgm"),
        migrations.RemoveField(model_name="event", name="search"),
        migrations.AddIndex(
            model_name="event",
            index=eventfeed.events.models.PostgresOnlyGinIndex(fields=["words"], name="ev_words_gin"),
        ),
    ]
