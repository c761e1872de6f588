from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from eventfeed import audit
from eventfeed.events.models import ApiKey, hash_key


def find(ref: str) -> ApiKey:
    """A key by its id (as listed), the key itself, or its name when that is unambiguous."""
    if ref.isdigit() and (key := ApiKey.objects.filter(pk=int(ref)).first()):
        return key
    if key := ApiKey.objects.filter(key_hash=hash_key(ref)).first():
        return key
    named = list(ApiKey.objects.filter(name=ref, revoked__isnull=True))
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        ids = ", ".join(str(k.pk) for k in named)
        raise CommandError(f"{len(named)} active keys are named '{ref}' (ids {ids}): give the id.")
    raise CommandError(f"No API key matches '{ref}'. See python manage.py list_api_keys.")


class Command(BaseCommand):
    help = "Revoke an API key, given its id (see list_api_keys), its name, or the key itself. Producers using it get 403."

    def add_arguments(self, parser):
        parser.add_argument("key", help="id, name or the key")

    def handle(self, *args, key, **options):
        api_key = find(key)
        if api_key.revoked:
            self.stdout.write(f"Key {api_key.pk} '{api_key.name}' was already revoked on {api_key.revoked:%Y-%m-%d %H:%M} UTC.")
            return
        with transaction.atomic():
            api_key.revoked = timezone.now()
            api_key.save(update_fields=["revoked"])
            audit.record("api-key.revoked", audit.key_resource(api_key), {"name": api_key.name})
        self.stdout.write(f"Revoked key {api_key.pk} '{api_key.name}' ({api_key.hint}…).")
