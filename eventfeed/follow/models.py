from __future__ import annotations

from django.db import models


class FollowedServer(models.Model):
    """One Prefect server (or Cloud workspace) that `follow_prefect` mirrors, and where it is.

    `position` is the newest `occurred` stored from it: after an interruption the follower asks
    for everything from a minute before it (ids dedupe the overlap).
    """

    url = models.CharField(max_length=500, unique=True)  # the API base, e.g. http://host:4200/api
    position = models.DateTimeField(null=True, blank=True)
    last_event_id = models.UUIDField(null=True, blank=True)
    # When the last event was stored here, and how far behind its server's `received` that was.
    last_event_at = models.DateTimeField(null=True, blank=True)
    lag_seconds = models.FloatField(null=True, blank=True)
    events_stored = models.BigIntegerField(default=0)
    connected = models.BooleanField(default=False)
    connected_since = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["url"]

    def __str__(self) -> str:
        return self.url

    @property
    def resource_id(self) -> str:
        return f"eventfeed.prefect-server.{self.url}"
