"""Reads and writes of blocks in Prefect's JSON shapes (`BlockType`, `BlockSchema`,
`BlockDocument`). Secrets are write-only: every read shows them as Prefect obfuscates them."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction

from eventfeed.events.schema import RESOURCE_ID, RESOURCE_NAME
from eventfeed.events.wire import iso

from .kinds import KINDS, secret_fields
from .models import BlockDocument, BlockSchema, BlockType

OBFUSCATED = "********"
NAME = re.compile(r"^[a-z0-9-]+$")


class BlockError(Exception):
    def __init__(self, problems: list[tuple[str, str]], status: int = 422):
        super().__init__("; ".join(f"{p}: {r}" for p, r in problems))
        self.problems, self.status = problems, status

    def as_list(self) -> list[dict]:
        return [{"path": p, "rule": r} for p, r in self.problems]


def type_json(t: BlockType) -> dict:
    return {"id": str(t.id), "created": iso(t.created), "updated": iso(t.updated), "name": t.name, "slug": t.slug,
            "logo_url": t.logo_url, "documentation_url": t.documentation_url, "description": t.description,
            "code_example": t.code_example, "is_protected": False}


def schema_json(s: BlockSchema) -> dict:
    return {"id": str(s.id), "created": iso(s.created), "updated": iso(s.updated), "checksum": s.checksum,
            "fields": s.fields, "block_type_id": str(s.block_type_id), "block_type": type_json(s.block_type),
            "capabilities": s.capabilities, "version": s.version}


def public_data(doc: BlockDocument) -> dict:
    hidden = secret_fields(doc.block_type.slug, doc.block_schema.fields if doc.block_schema else None)
    out = dict(doc.data)
    for name in hidden:
        if name in out and out[name] not in (None, ""):
            value = out[name]
            out[name] = {k: OBFUSCATED for k in value} if isinstance(value, dict) else OBFUSCATED
    return out


def document_json(doc: BlockDocument) -> dict:
    schema = doc.block_schema or ensure_schema(doc.block_type)
    return {"id": str(doc.id), "created": iso(doc.created), "updated": iso(doc.updated), "name": doc.name,
            "data": public_data(doc), "block_schema_id": str(schema.id), "block_schema": schema_json(schema),
            "block_type_id": str(doc.block_type_id), "block_type_name": doc.block_type.name,
            "block_type": type_json(doc.block_type), "block_document_references": {}, "is_anonymous": doc.is_anonymous}


def ensure_type(slug: str) -> BlockType:
    """The block type of a channel kind, made the first time a channel of that kind is."""
    kind = KINDS[slug]
    return BlockType.objects.get_or_create(slug=slug, defaults={"name": kind.name})[0]


def ensure_schema(block_type: BlockType) -> BlockSchema:
    """A schema for documents made on the Channels page: the SDK needs one to load a block."""
    schema = block_type.schemas.order_by("-created").first()
    if schema is None:
        kind = KINDS.get(block_type.slug)
        fields = {"title": block_type.name, "type": "object", "properties": {}, "block_type_slug": block_type.slug,
                  "secret_fields": [f.name for f in kind.fields if f.secret] if kind else [], "block_schema_references": {}}
        schema = BlockSchema.objects.create(checksum=f"eventfeed:{block_type.slug}", version="eventfeed", fields=fields,
                                            block_type=block_type)
    return schema


def merge_data(doc: BlockDocument | None, data: dict) -> dict:
    """New data over the old; an obfuscated secret sent back keeps the stored one (the SDK sends
    what it read when it saves a loaded block)."""
    old = doc.data if doc is not None else {}
    out = {}
    for key, value in data.items():
        if value == OBFUSCATED:
            out[key] = old.get(key, "")
        elif isinstance(value, dict) and isinstance(old.get(key), dict):
            out[key] = {k: old[key].get(k, "") if v == OBFUSCATED else v for k, v in value.items()}
        else:
            out[key] = value
    return out


def create_document(name: str, block_type: BlockType, data: dict, *, block_schema: BlockSchema | None = None,
                    is_anonymous: bool = False) -> BlockDocument:
    if not is_anonymous and not NAME.match(name or ""):
        raise BlockError([("name", "is required: lowercase letters, numbers and dashes")])
    if BlockDocument.objects.filter(block_type=block_type, name=name).exists():
        raise BlockError([("name", f"a {block_type.slug} block named {name!r} already exists")], status=409)
    with transaction.atomic():
        return BlockDocument.objects.create(name=name, block_type=block_type, block_schema=block_schema,
                                            data=merge_data(None, data), is_anonymous=is_anonymous)


def create_type(fields: dict) -> BlockType:
    """A block type made through the API (as the SDK does on a block class's first save), audited."""
    from eventfeed import audit

    with transaction.atomic():
        block_type = BlockType.objects.create(**fields)
        audit.record("block-type.created", _type_resource(block_type), {"block_type": fields})
    return block_type


def update_type(block_type: BlockType, fields: dict) -> None:
    from eventfeed import audit

    with transaction.atomic():
        changed = audit.changes({k: getattr(block_type, k) for k in fields}, fields)
        if not changed:
            return
        for name, value in fields.items():
            setattr(block_type, name, value)
        block_type.save()
        audit.record("block-type.updated", _type_resource(block_type), {"changed": changed})


def schema_for(block_type: BlockType, fields: dict, version: str, capabilities: list) -> BlockSchema:
    """The schema of these fields and version (one per checksum), made and audited when new."""
    from eventfeed import audit

    digest = checksum(fields)
    with transaction.atomic():
        schema, created = BlockSchema.objects.get_or_create(
            checksum=digest, version=version, block_type=block_type, defaults={"fields": fields, "capabilities": capabilities})
        if created:
            audit.record("block-schema.created", {RESOURCE_ID: f"prefect.block-schema.{schema.id}", RESOURCE_NAME: block_type.slug},
                         {"block_type": block_type.slug, "checksum": digest, "version": version, "capabilities": capabilities})
    return schema


def _type_resource(block_type: BlockType) -> dict[str, str]:
    return {RESOURCE_ID: f"prefect.block-type.{block_type.slug}", RESOURCE_NAME: block_type.name}


def audit_change(what: str, doc: BlockDocument, changed: list[str] | None = None) -> None:
    """eventfeed.audit.block-document.<what>: the name and type, and for an update the names of
    the changed fields, never their values (a channel's data holds its credentials)."""
    from eventfeed import audit

    payload = {"name": doc.name, "type": doc.block_type.slug}
    if changed is not None:
        payload["changed_fields"] = sorted(changed)
    audit.record(f"block-document.{what}", {RESOURCE_ID: f"prefect.block-document.{doc.id}", RESOURCE_NAME: doc.name or "(anonymous)"},
                 payload)


def find_document(value: Any) -> BlockDocument | None:
    import uuid

    try:
        return BlockDocument.objects.select_related("block_type", "block_schema").filter(pk=uuid.UUID(str(value))).first()
    except ValueError:
        return None


def checksum(fields: dict) -> str:
    """Prefect's block schema checksum (Block._calculate_schema_checksum), so that the SDK's
    read-by-checksum before every save finds the schema it registered the first time."""
    import hashlib
    import json

    def without_secrets(value):
        if isinstance(value, dict):
            return {k: without_secrets(v) for k, v in value.items() if k != "secret_fields"}
        return value

    clean = without_secrets(fields)
    if not clean.get("definitions"):
        clean.pop("definitions", None)
    return "sha256:" + hashlib.sha256(json.dumps([[clean], {}], sort_keys=True).encode()).hexdigest()
