"""Export: every event a filter matches, as NDJSON (Prefect's shape, one per line) or CSV.

The events are read a keyset page at a time (EventFilter.page), so an export of any size holds one
page in memory; the API, the feed's Export link and `manage.py export_events` all write what
`chunks()` yields.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from eventfeed.dbrouter import reading_replica, replica_reads

from . import jsoncodec
from .filters import EventFilter
from .wire import wire

FORMATS = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
PAGE = 500
# The CSV's columns: the event's scalar fields as text, its objects as JSON.
CSV_COLUMNS = ("id", "occurred", "received", "event", "resource_id", "resource", "related", "payload", "follows")


def events(f: EventFilter) -> Iterator[list]:
    """The filter's events in its order, a keyset page at a time."""
    after = None
    while True:
        batch, more = f.page(limit=PAGE, after=after)
        if batch:
            yield batch
        if not more:
            return
        after = (batch[-1].occurred, batch[-1].id)


def _csv_rows(batch: list) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for e in batch:
        shape = wire(e)
        writer.writerow([
            shape["id"], shape["occurred"], shape["received"], shape["event"], e.resource_id,
            jsoncodec.dumps(shape["resource"]), jsoncodec.dumps(shape["related"]), jsoncodec.dumps(shape["payload"]),
            shape["follows"] or "",
        ])
    return out.getvalue()


def chunks(f: EventFilter, fmt: str) -> Iterator[str]:
    """The export as text chunks of one page each."""
    if fmt == "csv":
        yield ",".join(CSV_COLUMNS) + "\r\n"
        for batch in events(f):
            yield _csv_rows(batch)
        return
    for batch in events(f):
        text = "".join(jsoncodec.dumps(wire(e)) + "\n" for e in batch)
        # Legal in JSON strings, but line breaks to readers that split on every Unicode line end
        # (Python's splitlines, JavaScript before ES2019): escaped, the file stays one event a line.
        yield text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _on(replica: bool, it: Iterator[str]) -> Callable[[], str | None]:
    """The next chunk, read where the view that started the export reads: the body is produced
    after the view has returned, outside its choice of database."""

    def next_chunk() -> str | None:
        with replica_reads(replica):
            return next(it, None)

    return next_chunk


def _sync_chunks(next_chunk) -> Iterator[str]:
    while (chunk := next_chunk()) is not None:
        yield chunk


async def _async_chunks(next_chunk) -> AsyncIterator[str]:
    """For an ASGI server: Django buffers a synchronous iterator whole under ASGI, so each page is
    read in a worker thread and handed over as it comes."""
    next_async = sync_to_async(next_chunk, thread_sensitive=True)
    while (chunk := await next_async()) is not None:
        yield chunk


def response(request: HttpRequest, f: EventFilter, fmt: str) -> StreamingHttpResponse:
    """A streamed download of the filter's events; `fmt` is one of FORMATS."""
    next_chunk = _on(reading_replica(), chunks(f, fmt))
    body = _async_chunks(next_chunk) if isinstance(request, ASGIRequest) else _sync_chunks(next_chunk)
    out = StreamingHttpResponse(body, content_type=FORMATS[fmt])
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    out["Content-Disposition"] = f'attachment; filename="events-{stamp}.{fmt}"'
    out["X-Accel-Buffering"] = "no"
    return out
