from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F, Q


class Automation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    # Normalised Prefect-shaped JSON (triggers.parse_trigger / action_specs.parse_actions output).
    trigger = models.JSONField()
    actions = models.JSONField(default=list)
    actions_on_trigger = models.JSONField(default=list)
    actions_on_resolve = models.JSONField(default=list)
    tags = models.JSONField(default=list)
    owner_resource = models.CharField(max_length=500, null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    # Every write goes through store.save_automation or a queryset update that sets it: the
    # evaluators reload their trigger index when max(updated) moves.
    updated = models.DateTimeField(auto_now=True)
    last_fired = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The evaluators' "has anything changed?" check: max(updated) over all rows.
            models.Index(F("updated").desc(), name="au_updated"),
            # The list page and the API's filter, sorted by name.
            models.Index("name", name="au_name"),
            # related-to/{resource_id} and owned-by/{resource_id}.
            models.Index("owner_resource", name="au_owner"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def resource_id(self) -> str:
        return f"prefect.automation.{self.id}"


class TriggerState(models.Model):
    """The live buckets of one automation's trigger (core.py's `state`), one row per automation.

    Evaluating an event locks this row (SELECT … FOR UPDATE on PostgreSQL; SQLite's IMMEDIATE
    transactions serialise writers), so processes evaluating the same automation at once never
    lose a count or fire twice; different automations proceed in parallel.
    """

    automation = models.OneToOneField(Automation, primary_key=True, on_delete=models.CASCADE, related_name="state")
    state = models.JSONField(default=dict)
    # When a proactive window next closes; the ticker reads only due rows.
    next_due = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # The ticker: rows whose next_due <= now (SKIP LOCKED), soonest first.
            models.Index("next_due", name="ts_next_due", condition=Q(next_due__isnull=False)),
        ]


class EvaluatedEvent(models.Model):
    """Events an evaluator has taken. channels-redis may hand a message on a shared named channel
    to two processes (its in-flight backup queue is restored by the next reader), so each
    evaluator claims the events it is about to evaluate; the loser of a claim skips them."""

    event_id = models.UUIDField(primary_key=True)
    at = models.DateTimeField()

    class Meta:
        indexes = [
            # The ticker forgets claims older than an hour.
            models.Index("at", name="ee_at"),
        ]


class CatchUpMark(models.Model):
    """How far the catch-up from the store has evaluated, by arrival: every event stored with
    (received, id) at or before (received, event_id) has been evaluated, live or by catch-up
    (catchup.py). One row, created by the migration, so that events stored between the
    migration and the first evaluator's start are not skipped."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    received = models.DateTimeField()
    event_id = models.UUIDField()
    updated = models.DateTimeField()


class Firing(models.Model):
    TRIGGERED, RESOLVED = "triggered", "resolved"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="firings")
    kind = models.CharField(max_length=16, default=TRIGGERED)
    at = models.DateTimeField()
    triggering_event_id = models.UUIDField(null=True, blank=True)
    # The triggering event without its payload (id, occurred, event, resource, related).
    triggering_event = models.JSONField(null=True, blank=True)
    labels = models.JSONField(default=dict)
    # The prefect.automation.triggered / .resolved event stored for this firing.
    event_id = models.UUIDField()
    # Recorded by a replay of stored events (replay.py), not by the live engine.
    replayed = models.BooleanField(default=False)

    class Meta:
        indexes = [
            # The automation page's firing history, newest first.
            models.Index("automation", F("at").desc(), name="fi_automation_at"),
        ]


class ActionRun(models.Model):
    PENDING, RUNNING, SUCCEEDED, FAILED = "pending", "running", "succeeded", "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    firing = models.ForeignKey(Firing, on_delete=models.CASCADE, related_name="runs")
    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="runs")
    index = models.PositiveIntegerField()
    action = models.JSONField()
    status = models.CharField(max_length=16, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    response_status = models.PositiveIntegerField(null=True, blank=True)
    # When the runner may next take it: the retry time when pending, the lease end when running
    # (a run whose process died is taken again after its lease).
    next_attempt = models.DateTimeField()
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)
    # Each attempt: what was sent and what came back, secrets masked (exchanges.py).
    exchanges = models.JSONField(default=list, blank=True)
    # A run started by hand from the firing history to retry this failed one.
    rerun_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns")

    class Meta:
        ordering = ["index"]
        indexes = [
            # The action runner: unfinished runs whose next_attempt <= now (SKIP LOCKED).
            models.Index("next_attempt", name="ar_due", condition=Q(status__in=["pending", "running"])),
            # The automation page: recent runs and their failures.
            models.Index("automation", F("created").desc(), name="ar_automation_created"),
        ]


class Notification(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    automation = models.ForeignKey(Automation, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications")
    firing = models.ForeignKey(Firing, null=True, blank=True, on_delete=models.SET_NULL)
    subject = models.CharField(max_length=500)
    body = models.TextField(blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]
        indexes = [
            # The notifications page, newest first.
            models.Index(F("created").desc(), name="no_created"),
        ]


class EvaluationRecord(models.Model):
    """What an automation did with one event that reached it (the live index named the event's
    name, and its resource ids where the trigger requires exact ones): did the trigger cover it,
    and if so what its count became. One row per (automation, event), written with the batch's
    evaluation in one COPY; kept for EVENTFEED_EVALUATIONS_KEPT_HOURS. The page explains a miss
    in full by running explain.py on the stored event."""

    FIRED, RESOLVED, COUNTED, MISSED = "fired", "resolved", "counted", "missed"

    # The automation page's newest evaluations and the retention's per-automation deletes read
    # this key's order; it is also the table's only index besides event_id (each index is a
    # cost per event on the evaluator's hot path).
    pk = models.CompositePrimaryKey("automation", "at", "event_id")
    # No constraint: an evaluator may still record an event for an automation deleted a moment
    # ago, and that must not fail its batch (deleting an automation deletes its records).
    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="evaluations", db_index=False,
                                   db_constraint=False)
    event_id = models.UUIDField()
    event = models.CharField(max_length=1024)
    occurred = models.DateTimeField()
    at = models.DateTimeField()
    outcome = models.CharField(max_length=16)
    # The bucket after the event: {"path", "key", "n", "th", "s", "e"}; the composite's fired
    # children; nothing for a miss.
    detail = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            # The event page: which automations this event reached.
            models.Index("event_id", name="ev_rec_event"),
        ]
