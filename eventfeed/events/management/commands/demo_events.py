import os
import time

from django.core.management.base import BaseCommand, CommandError

from eventfeed.events import demo


class Command(BaseCommand):
    help = (
        "Demo events from the whole Prefect catalogue: --backfill N events over the last --days D "
        "(stored through the ingest path), and/or --stream RATE events per second posted to the "
        "HTTP door of a running server until Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument("--backfill", type=int, default=0, metavar="N", help="store N events now (default 0)")
        parser.add_argument("--days", type=float, default=7, metavar="D", help="spread the backfill over the last D days (default 7)")
        parser.add_argument("--stream", type=float, default=0, metavar="RATE", help="then post about RATE events/s, timed now, until interrupted")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server to stream to (default http://127.0.0.1:8000)")
        parser.add_argument("--key", default=os.environ.get("EVENTFEED_API_KEY", ""), help="API key for --stream (default: $EVENTFEED_API_KEY)")
        parser.add_argument("--seed", type=int, default=None, help="repeatable stories (the resources are always the same)")

    def handle(self, *args, backfill, days, stream, url, key, seed, **options):
        if backfill < 0 or days <= 0 or stream < 0:
            raise CommandError("--backfill and --stream must not be negative; --days must be positive.")
        if not backfill and not stream:
            raise CommandError("Nothing to do: give --backfill N and/or --stream RATE.")
        if stream and not key:
            raise CommandError("--stream needs an API key: --key KEY or EVENTFEED_API_KEY (python manage.py create_api_key demo).")
        if backfill:
            self.backfill(backfill, days, seed)
        if stream:
            self.stream(url, key, stream, seed)

    def backfill(self, n, days, seed):
        started = time.monotonic()
        events = demo.backfill_events(n, days, seed=seed)
        new, duplicates = demo.store_batches(
            events, progress=lambda done: self.stderr.write(f"\r  stored {done:,}/{len(events):,}", ending="")
        )
        self.stderr.write("")
        self.stdout.write(
            f"Backfilled {new:,} demo events over the last {days:g} days in {time.monotonic() - started:.1f}s"
            + (f" ({duplicates:,} duplicates)" if duplicates else "")
            + "."
        )

    def stream(self, url, key, rate, seed):
        self.stdout.write(f"Streaming about {rate:g} demo events/s to {url}/api/events; Ctrl-C stops.")
        total = 0
        try:
            for answer in demo.stream(url, key, rate, seed=seed, log=self.stderr.write):
                total += answer.get("new", 0)
        except KeyboardInterrupt:
            pass
        self.stdout.write(f"Stopped streaming after {total:,} new events.")
