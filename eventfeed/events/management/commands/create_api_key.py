from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from eventfeed import audit
from eventfeed.events.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key and print it alone on standard output (KEY=$(python manage.py create_api_key ci))."

    def add_arguments(self, parser):
        parser.add_argument("name", help="what will use the key, e.g. 'ci' or 'prod-workers'")

    def handle(self, *args, name, **options):
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("Give the key a name of 1 to 100 characters.")
        with transaction.atomic():
            key, raw = ApiKey.create(name)
            audit.record("api-key.created", audit.key_resource(key), {"name": key.name})
        # Only the key on stdout, so scripts can capture it; the reminder goes to stderr.
        self.stdout.write(raw)
        self.stderr.write(f"Created API key '{name}'. It is shown only this once; it is stored hashed.")
