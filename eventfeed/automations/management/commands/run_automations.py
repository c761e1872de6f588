"""A dedicated automation worker: evaluates events, ticks proactive triggers, runs actions."""

from __future__ import annotations

import asyncio
import os

from django.conf import settings
from django.core.management.base import BaseCommand

from eventfeed.automations import service
from eventfeed.events import retention


class Command(BaseCommand):
    help = "Evaluate automations (events from the channel layer, proactive windows, action runs)."

    def handle(self, *args, **options):
        if not settings.REDIS_URL:
            # Normal on one machine, not an error: said calmly, on stdout.
            self.stdout.write(
                "Automations: the web process evaluates new events (no REDIS_URL); "
                "this worker ticks proactive triggers and runs actions."
            )
        worker = service.Service(consume=bool(settings.REDIS_URL))
        service._running[os.getpid()] = worker
        self.stdout.write("Evaluating automations; Ctrl-C to stop.")
        try:
            asyncio.run(self.run(worker))
        except KeyboardInterrupt:
            pass

    async def run(self, worker) -> None:
        await asyncio.gather(worker.run(), retention.prune_forever())
