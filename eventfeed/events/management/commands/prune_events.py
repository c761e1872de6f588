from django.core.management.base import BaseCommand

from eventfeed.events import retention


class Command(BaseCommand):
    help = (
        "Remove the events retention says have expired (EVENTFEED_RETENTION_DAYS and the per-name "
        "overrides), printing each day removed; --dry-run prints only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="print what would be removed, remove nothing")

    def handle(self, *args, dry_run: bool, **options):
        policy = retention.Policy.current()
        rules = ", ".join(f"{r.pattern} {r.days} d" for r in policy.rules) or "none"
        self.stdout.write(f"Retention: {policy.default} days; overrides: {rules}.")
        plans = retention.prune(dry_run=dry_run, out=self.stdout.write)
        if not plans:
            self.stdout.write("Nothing has expired.")
            return
        total = sum(p.events for p in plans)
        approx = "~" if any(p.estimated for p in plans) else ""
        verb = "Would remove" if dry_run else "Removed"
        self.stdout.write(f"{verb} {approx}{total:,} events from {len(plans)} day(s).")
