from django.core.management.base import BaseCommand

from eventfeed.events.models import ApiKey


def describe(key: ApiKey) -> str:
    when = lambda t: t.strftime("%Y-%m-%d %H:%M") if t else "never"  # noqa: E731
    status = f"revoked {when(key.revoked)}" if key.revoked else "active"
    return f"{key.pk:>5}  {key.hint + '…':<13} {key.name:<30} created {when(key.created)}  last used {when(key.last_used)}  {status}"


class Command(BaseCommand):
    help = "List API keys (id, the key's first characters, name, dates, status). Keys themselves are stored hashed."

    def add_arguments(self, parser):
        parser.add_argument("--active", action="store_true", help="only keys that are not revoked")

    def handle(self, *args, active, **options):
        keys = ApiKey.objects.all()
        if active:
            keys = keys.filter(revoked__isnull=True)
        if not keys:
            self.stdout.write("No API keys. Create one with: python manage.py create_api_key NAME")
            return
        for key in keys:
            self.stdout.write(describe(key))
