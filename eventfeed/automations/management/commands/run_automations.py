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
            self.stderr.write(
                "REDIS_URL is not set: with the in-memory channel layer this process sees no events "
                "(the web process evaluates them); it will only tick proactive triggers and run actions."
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
