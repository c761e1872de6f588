from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, timezone as dt_timezone

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import F, Q

from .schema import RESOURCE_ID, RESOURCE_ROLE


class PostgresOnlyIndex(models.Index):
    """An index that exists on PostgreSQL and is a no-op elsewhere.

    Operator classes (gin_trgm_ops, jsonb_path_ops) have no SQLite equivalent, and SQLite does
    not need them for the laptop default: its scans are fast enough at demo scale.
    """

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor != "postgresql":
            return ""
        return super().create_sql(model, schema_editor, using=using, **kwargs)

    def remove_sql(self, model, schema_editor, **kwargs):
        if schema_editor.connection.vendor != "postgresql":
            return ""
        return super().remove_sql(model, schema_editor, **kwargs)


class PostgresOnlyGinIndex(PostgresOnlyIndex, GinIndex):
    pass


class WordsField(models.Field):
    """An event's search words (a list of str): a tsvector on PostgreSQL, " w1 w2 …" elsewhere.

    The words are split in Python (schema.search_words) and stored as they are, never re-parsed
    by a text-search configuration, so the database and filters.matches() agree on every word.
    """

    def db_type(self, connection) -> str:
        return "tsvector" if connection.vendor == "postgresql" else "text"

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None or isinstance(value, str):
            return value
        return words_sql(value, connection.vendor)

    def from_db_value(self, value, expression, connection):
        if value is None:
            return []
        return [w.strip("'") for w in value.split()]


def words_sql(words: list[str], vendor: str) -> str:
    """Words as the column stores them. Words are letters, digits and underscores only: none of
    them is special in a tsvector's text (quotes, backslash, colon, space), so none is quoted."""
    if vendor == "postgresql":
        return " ".join(words)
    return " " + " ".join(words) if words else ""


class Event(models.Model):
    id = models.UUIDField(primary_key=True)
    occurred = models.DateTimeField()
    received = models.DateTimeField()
    event = models.CharField(max_length=1024)
    resource_id = models.TextField()
    resource = models.JSONField()
    related = models.JSONField(default=list)
    payload = models.JSONField(default=dict)
    follows = models.UUIDField(null=True, blank=True)
    # The distinct words of the name, labels and payload (schema.search_words), for free text.
    words = WordsField(default=list)

    class Meta:
        indexes = [
            # The unfiltered feed and every time-bounded page: newest first, keyset on (occurred, id).
            models.Index(F("occurred").desc(), F("id").desc(), name="ev_occurred_id"),
            # Event names, newest first: exact names, and prefixes (`prefect.flow-run.*`) too,
            # because migration 0002 gives the column the C collation on PostgreSQL.
            models.Index("event", F("occurred").desc(), name="ev_event_occurred"),
            # Primary-resource filters (`resource=<id>` / `<prefix>*`), evaluated on the events
            # row: exact ids and, with the C collation, prefixes are ranges of this index.
            models.Index("resource_id", F("occurred").desc(), name="ev_resource_occurred"),
            # Primary-resource label conditions (`resource=key=value`) when they are rare, and
            # the read API's capped count of any label condition: jsonb containment.
            PostgresOnlyGinIndex(OpClass("resource", name="jsonb_path_ops"), name="ev_resource_gin"),
            # The live feed's catch-up after a reconnect, by arrival (queries.arrived_after):
            # received only grows, so each insert lands at the index's right edge.
            models.Index("received", "id", name="ev_received_id"),
            # "What follows this event" on the event page; most events follow nothing.
            models.Index("follows", name="ev_follows", condition=Q(follows__isnull=False)),
            # Free text: `words @@ 'term':*` (a word starting with each term). A word index costs
            # ingest a sixth of what a trigram index over the same text did (~50 entries per
            # event instead of ~600), which is what lets ingest run at COPY speed.
            PostgresOnlyGinIndex(fields=["words"], name="ev_words_gin"),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.resource_id} @ {self.occurred.isoformat()}"


class EventResource(models.Model):
    """One row per resource an event touches: the primary one (role "") and each related one.

    `occurred` and `event` are copied from the event so that "newest events involving X" and
    "newest events named N involving X" are range scans of one index, never a sort.
    """

    # No database FK: ingest writes both tables with COPY and the check would cost a lookup per
    # row; retention deletes from both tables itself.
    event = models.ForeignKey(
        Event, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="resources"
    )
    occurred = models.DateTimeField()
    event_name = models.CharField(max_length=1024)
    resource_id = models.TextField()
    role = models.CharField(max_length=255, blank=True, default="")
    # All labels but prefect.resource.id and, for a related resource, prefect.resource.role:
    # the row's own columns hold them.
    labels = models.JSONField(default=dict)

    class Meta:
        indexes = [
            # Newest events involving resource X (feed resource/related/any filters, event page
            # "around this event"), keyset on (occurred, event_id); with the C collation of
            # migration 0002 it also serves resource id prefixes.
            models.Index("resource_id", F("occurred").desc(), F("event_id").desc(), name="er_resource_occurred"),
            # A rare event name combined with a very common resource: both in one index.
            models.Index("resource_id", "event_name", F("occurred").desc(), name="er_resource_event"),
            # From an event to its resources: label conditions (EXISTS), the event page,
            # retention. It is the foreign key's index, named.
            models.Index("event", name="er_event"),
            # Label conditions `key=value`: jsonb containment.
            PostgresOnlyGinIndex(OpClass("labels", name="jsonb_path_ops"), name="er_labels_gin"),
        ]


def resource_rows(resource: dict, related: list[dict]):
    """(id, role, labels) per resource, once per (id, role), as ingest stores them.

    The labels leave out what the row's own columns hold: the id, and a related resource's role.
    Most related resources carry nothing else, so their rows add nothing to the labels index.
    """
    rid = resource[RESOURCE_ID]
    seen = {(rid, "")}
    yield rid, "", {k: v for k, v in resource.items() if k != RESOURCE_ID}
    for labels in related:
        rid, role = labels[RESOURCE_ID], labels[RESOURCE_ROLE]
        if (rid, role) in seen:
            continue
        seen.add((rid, role))
        yield rid, role, {k: v for k, v in labels.items() if k != RESOURCE_ID and k != RESOURCE_ROLE}


class EventCount(models.Model):
    """How many events of each name occurred in each minute and each hour.

    Ingest adds to it in the same transaction as the events, so histograms and the names picker
    over days read a few thousand rows instead of hundreds of thousands of events.
    """

    width = models.PositiveIntegerField()  # seconds, one of ROLLUP_WIDTHS
    bucket = models.DateTimeField()
    event = models.CharField(max_length=1024)
    count = models.PositiveIntegerField()

    class Meta:
        constraints = [
            # Histograms and name counts read a range of buckets of one width; ingest's upsert
            # (ON CONFLICT) targets it.
            models.UniqueConstraint(fields=["width", "bucket", "event"], name="ec_width_bucket_event"),
        ]


# A minute (1-hour ranges), 15 minutes (the 24-hour histogram's bars) and an hour (longer).
ROLLUP_WIDTHS = (60, 900, 3600)


EPOCH = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)


def bucket_start(moment: datetime, width: int) -> datetime:
    """The start of the `width`-second count bucket holding `moment` (buckets align to the epoch,
    so to the UTC minute, quarter hour and hour)."""
    # timedelta arithmetic is exact; a float timestamp can round a last microsecond into the next
    # bucket, and ingest (rollup_counts) must put an event in the bucket this names.
    seconds = (moment - EPOCH) // timedelta(seconds=1)
    return EPOCH + timedelta(seconds=seconds - seconds % width)


class RetentionOverride(models.Model):
    """How long events of a name (or prefix `acme.audit.*`) are kept, set on the storage page.

    Overrides from EVENTFEED_RETENTION_OVERRIDES sit beside these; for the same pattern this one
    wins (retention.Policy).
    """

    pattern = models.CharField(max_length=1024, unique=True)
    days = models.PositiveIntegerField()
    updated = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["pattern"]

    def __str__(self) -> str:
        return f"{self.pattern}: {self.days} days"


class IngestProblem(models.Model):
    """An event the websocket door could not accept, kept so an operator can see what was lost."""

    created = models.DateTimeField(auto_now_add=True)
    door = models.CharField(max_length=32)
    api_key = models.ForeignKey("ApiKey", null=True, blank=True, on_delete=models.SET_NULL)
    errors = models.JSONField()
    # The frame as received, cut to a readable size: the full frame may be the 1.5 MB that broke a limit.
    frame = models.TextField()

    class Meta:
        ordering = ["-created"]
        indexes = [
            # The problems page lists the newest first.
            models.Index(F("created").desc(), name="ip_created"),
        ]


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiKey(models.Model):
    PREFIX = "evf_"

    name = models.CharField(max_length=100)
    # Only the hash is stored; the key itself is shown once, at creation.
    key_hash = models.CharField(max_length=64, unique=True)
    # The first characters, so a listed key can be recognised without being usable.
    hint = models.CharField(max_length=12)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)
    revoked = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @classmethod
    def create(cls, name: str, created_by=None) -> tuple["ApiKey", str]:
        raw = cls.PREFIX + secrets.token_urlsafe(32)
        key = cls.objects.create(name=name, key_hash=hash_key(raw), hint=raw[:10], created_by=created_by)
        return key, raw

