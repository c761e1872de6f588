"""A saved view: a name for the feed's query string (range, filters, text, columns), the owner's
own or shared with every user; and which view each user's feed opens on (their home)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

MAX_NAME = 100
MAX_QUERY = 4000


class SavedView(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=MAX_NAME)
    # The feed's query string without paging (store.normalized_query): `/events/?{query}` is the view.
    query = models.TextField(blank=True)
    shared = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            # Also the index of "a user's own views by name" (store.visible_to, the name check).
            models.UniqueConstraint(fields=["owner", "name"], name="savedview_owner_name_uniq"),
        ]
        indexes = [
            # store.visible_to: the views every user sees (shared ones), by name.
            models.Index(fields=["shared", "name"], name="savedview_shared_name"),
        ]

    def __str__(self) -> str:
        return self.name

    def feed_url(self) -> str:
        return reverse("feed") + (f"?{self.query}" if self.query else "")


class Home(models.Model):
    """The view a user's feed opens on (`/`); one per user."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="feed_home")
    view = models.ForeignKey(SavedView, on_delete=models.CASCADE, related_name="homes")
