"""A related resource's row keeps its role in `role` only, no longer also among its labels."""

from django.db import migrations

SQL = {
    "postgresql": "UPDATE events_eventresource SET labels = labels - 'prefect.resource.role' "
                  "WHERE role <> '' AND labels ? 'prefect.resource.role'",
    "sqlite": """UPDATE events_eventresource SET labels = json_remove(labels, '$."prefect.resource.role"') WHERE role <> ''""",
}


def strip_roles(apps, schema_editor):
    sql = SQL.get(schema_editor.connection.vendor)
    if sql is not None:
        schema_editor.execute(sql)


class Migration(migrations.Migration):

    dependencies = [
        ("events", "0006_search_words"),
    ]

    operations = [
        migrations.RunPython(strip_roles, migrations.RunPython.noop),
    ]
