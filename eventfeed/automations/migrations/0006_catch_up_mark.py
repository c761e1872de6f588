import uuid

from django.db import migrations, models
from django.utils import timezone


def start_mark(apps, schema_editor):
    # From now: events stored before this migration were evaluated by the live path, or not
    # at all, as before; everything after it is caught up if the live path misses it.
    now = timezone.now()
    apps.get_model("automations", "CatchUpMark").objects.using(schema_editor.connection.alias).get_or_create(
        id=1, defaults={"received": now, "event_id": uuid.UUID(int=0), "updated": now})


class Migration(migrations.Migration):

    dependencies = [
        ('automations', '0005_action_run_exchanges'),
    ]

    operations = [
        migrations.CreateModel(
            name='CatchUpMark',
            fields=[
                ('id', models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ('received', models.DateTimeField()),
                ('event_id', models.UUIDField()),
                ('updated', models.DateTimeField()),
            ],
        ),
        migrations.RunPython(start_mark, migrations.RunPython.noop),
    ]
