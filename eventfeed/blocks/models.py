"""Notification channels, stored as Prefect stores blocks: a block type (`slack-webhook`), a
schema (the fields, which of them are secret) and a block document (one channel: its name and
data). The SDK's `SlackWebhook(url=…).save("ops")` writes all three; the Channels page writes
the same rows. An automation's `send-notification` / `call-webhook` names a document by id."""

from __future__ import annotations

import uuid

from django.db import models


class BlockType(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    slug = models.CharField(max_length=200, unique=True)
    name = models.CharField(max_length=200)
    logo_url = models.URLField(max_length=500, null=True, blank=True)
    documentation_url = models.URLField(max_length=500, null=True, blank=True)
    description = models.TextField(null=True, blank=True)
    code_example = models.TextField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)


class BlockSchema(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    checksum = models.CharField(max_length=200)
    version = models.CharField(max_length=100, default="")
    # The JSON schema of the block's fields; `secret_fields` names the write-only ones.
    fields = models.JSONField(default=dict)
    capabilities = models.JSONField(default=list)
    block_type = models.ForeignKey(BlockType, on_delete=models.CASCADE, related_name="schemas")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # The SDK's read_block_schema_by_checksum(checksum, version) before every save.
            models.Index("checksum", "version", name="bs_checksum"),
        ]


class BlockDocument(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    name = models.CharField(max_length=200)
    block_type = models.ForeignKey(BlockType, on_delete=models.PROTECT, related_name="documents")
    block_schema = models.ForeignKey(BlockSchema, null=True, on_delete=models.SET_NULL, related_name="documents")
    # Secrets included: the API and the pages never show them (see blocks.store.public_data).
    data = models.JSONField(default=dict)
    is_anonymous = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    # The last delivery through this channel (a test message or an action).
    last_delivery_at = models.DateTimeField(null=True, blank=True)
    last_delivery_ok = models.BooleanField(null=True)
    last_delivery_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["name"]
        constraints = [
            # Prefect's rule, and the lookup of read_block_document_by_name(slug, name).
            models.UniqueConstraint("block_type", "name", name="bd_type_name"),
        ]

    def __str__(self) -> str:
        return self.name
