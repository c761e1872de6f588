"""Prefect's block API, as much as the SDK uses to save, load and list blocks
(`SlackWebhook(url=…).save("ops")`, `Webhook.load("ops")`, `read_block_documents()`)."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from eventfeed.events.api import read_json
from eventfeed.events.auth import api_error, api_key_required

from . import store
from .models import BlockDocument, BlockSchema, BlockType

TYPE_FIELDS = {"name", "slug", "logo_url", "documentation_url", "description", "code_example"}


def _fail(e: store.BlockError) -> JsonResponse:
    return api_error(e.status, str(e), errors=e.as_list())


def _object(request: HttpRequest) -> tuple[dict | None, JsonResponse | None]:
    data, error = read_json(request)
    if error:
        return None, error
    if not isinstance(data, dict):
        return None, api_error(422, "The body must be a JSON object.", errors=[{"path": "", "rule": "must be an object"}])
    return data, None


def _uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


# -- block types ------------------------------------------------------------------------------------

@require_POST
@api_key_required
def types_create(request: HttpRequest) -> JsonResponse:
    data, error = _object(request)
    if error:
        return error
    slug, name = data.get("slug"), data.get("name")
    problems = [(k, "is required: a non-empty string") for k, v in (("slug", slug), ("name", name)) if not isinstance(v, str) or not v]
    if problems:
        return _fail(store.BlockError(problems))
    if BlockType.objects.filter(slug=slug).exists():
        return api_error(409, f"A block type with slug {slug!r} already exists.")
    fields = {k: v for k, v in data.items() if k in TYPE_FIELDS}
    return JsonResponse(store.type_json(store.create_type(fields)), status=201)


@require_GET
@api_key_required
def type_by_slug(request: HttpRequest, slug: str) -> JsonResponse:
    block_type = BlockType.objects.filter(slug=slug).first()
    if block_type is None:
        return api_error(404, "Block type not found.")
    return JsonResponse(store.type_json(block_type))


@require_http_methods(["PATCH"])
@api_key_required
def type_update(request: HttpRequest, type_id: str) -> HttpResponse:
    data, error = _object(request)
    if error:
        return error
    block_type = BlockType.objects.filter(pk=_uuid(type_id)).first() if _uuid(type_id) else None
    if block_type is None:
        return api_error(404, "Block type not found.")
    store.update_type(block_type, {k: v for k, v in data.items() if k in TYPE_FIELDS - {"slug"}})
    return HttpResponse(status=204)


@require_POST
@api_key_required
def types_filter(request: HttpRequest) -> JsonResponse:
    return JsonResponse([store.type_json(t) for t in BlockType.objects.order_by("name")], safe=False)


# -- block schemas ------------------------------------------------------------------------------------

@require_POST
@api_key_required
def schemas_create(request: HttpRequest) -> JsonResponse:
    data, error = _object(request)
    if error:
        return error
    fields, type_id = data.get("fields"), _uuid(data.get("block_type_id"))
    block_type = BlockType.objects.filter(pk=type_id).first() if type_id else None
    problems = []
    if not isinstance(fields, dict):
        problems.append(("fields", "is required: the block's JSON schema"))
    if block_type is None:
        problems.append(("block_type_id", "must be the id of a block type"))
    if problems:
        return _fail(store.BlockError(problems))
    schema = store.schema_for(block_type, fields, str(data.get("version") or ""), data.get("capabilities") or [])
    return JsonResponse(store.schema_json(schema), status=201)


@require_GET
@api_key_required
def schema_by_checksum(request: HttpRequest, checksum: str) -> JsonResponse:
    schemas = BlockSchema.objects.filter(checksum=checksum).select_related("block_type")
    if request.GET.get("version"):
        schemas = schemas.filter(version=request.GET["version"])
    schema = schemas.order_by("-created").first()
    if schema is None:
        return api_error(404, "Block schema not found.")
    return JsonResponse(store.schema_json(schema))


@require_GET
@api_key_required
def schema_item(request: HttpRequest, schema_id: str) -> JsonResponse:
    schema = BlockSchema.objects.filter(pk=_uuid(schema_id)).select_related("block_type").first() if _uuid(schema_id) else None
    if schema is None:
        return api_error(404, "Block schema not found.")
    return JsonResponse(store.schema_json(schema))


@require_POST
@api_key_required
def schemas_filter(request: HttpRequest) -> JsonResponse:
    return JsonResponse([store.schema_json(s) for s in BlockSchema.objects.select_related("block_type")], safe=False)


# -- block documents ----------------------------------------------------------------------------------

def _documents():
    return BlockDocument.objects.select_related("block_type", "block_schema", "block_schema__block_type")


@require_POST
@api_key_required
def documents_create(request: HttpRequest) -> JsonResponse:
    data, error = _object(request)
    if error:
        return error
    type_id, schema_id = _uuid(data.get("block_type_id")), _uuid(data.get("block_schema_id"))
    block_type = BlockType.objects.filter(pk=type_id).first() if type_id else None
    schema = BlockSchema.objects.filter(pk=schema_id).first() if schema_id else None
    problems = []
    if block_type is None:
        problems.append(("block_type_id", "must be the id of a block type"))
    if not isinstance(data.get("data", {}), dict):
        problems.append(("data", "must be an object"))
    if problems:
        return _fail(store.BlockError(problems))
    try:
        doc = store.create_document(data.get("name") or "", block_type, data.get("data") or {}, block_schema=schema,
                                    is_anonymous=bool(data.get("is_anonymous")))
    except store.BlockError as e:
        return _fail(e)
    store.audit_change("created", doc)
    return JsonResponse(store.document_json(_documents().get(pk=doc.pk)), status=201)


@require_http_methods(["GET", "PATCH", "DELETE"])
@api_key_required
def document_item(request: HttpRequest, document_id: str) -> HttpResponse:
    doc = _documents().filter(pk=_uuid(document_id)).first() if _uuid(document_id) else None
    if doc is None:
        return api_error(404, "Block document not found.")
    if request.method == "GET":
        return JsonResponse(store.document_json(doc))
    if request.method == "DELETE":
        store.audit_change("deleted", doc)
        doc.delete()
        return HttpResponse(status=204)
    data, error = _object(request)
    if error:
        return error
    before = dict(doc.data)
    if "data" in data:
        if not isinstance(data["data"], dict):
            return _fail(store.BlockError([("data", "must be an object")]))
        merge = data.get("merge_existing_data", True)
        doc.data = {**(doc.data if merge else {}), **store.merge_data(doc, data["data"])}
    if _uuid(data.get("block_schema_id")):
        doc.block_schema = BlockSchema.objects.filter(pk=_uuid(data["block_schema_id"])).first() or doc.block_schema
    doc.save()
    store.audit_change("updated", doc, [k for k in {*before, *doc.data} if before.get(k) != doc.data.get(k)])
    return HttpResponse(status=204)


@require_POST
@api_key_required
def documents_filter(request: HttpRequest) -> JsonResponse:
    return JsonResponse([store.document_json(d) for d in _documents().filter(is_anonymous=False)], safe=False)


@require_GET
@api_key_required
def documents_of_type(request: HttpRequest, slug: str) -> JsonResponse:
    return JsonResponse([store.document_json(d) for d in _documents().filter(block_type__slug=slug)], safe=False)


@require_GET
@api_key_required
def document_by_name(request: HttpRequest, slug: str, name: str) -> JsonResponse:
    doc = _documents().filter(block_type__slug=slug, name=name).first()
    if doc is None:
        return api_error(404, "Block document not found.")
    return JsonResponse(store.document_json(doc))
