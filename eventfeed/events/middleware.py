"""Every answer under /api/ is JSON, whatever went wrong: producers parse `detail`, never HTML."""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse

from . import dbfaults

log = logging.getLogger("django.request")

API_PREFIX = "/api/"
INTERNAL_ERROR = "Internal error: the request was not completed. Retry with the same event ids."


def database_unavailable() -> JsonResponse:
    response = JsonResponse(
        {"detail": "The database is unavailable; nothing was stored. Retry with the same event ids."}, status=503
    )
    response["Retry-After"] = str(dbfaults.RETRY_AFTER_SECONDS)
    return response


class ApiErrorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith(API_PREFIX)
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            return self.as_json(request, response)
        return response

    def as_json(self, request: HttpRequest, response: HttpResponse) -> JsonResponse:
        status = response.status_code
        if status == 404:
            detail = f"There is no API endpoint at {request.path}."
        elif status == 405:
            detail = f"{request.method} is not allowed here; use {response.get('Allow', 'another method')}."
        elif status >= 500:
            detail = INTERNAL_ERROR
        else:
            detail = response.reason_phrase
        json_response = JsonResponse({"detail": detail}, status=status)
        for header in ("Allow", "Retry-After"):
            if header in response:
                json_response[header] = response[header]
        return json_response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(API_PREFIX):
            return None
        if isinstance(exception, RequestDataTooBig):
            # A chunked body has no Content-Length to refuse it by before reading.
            limit = settings.EVENTFEED_MAX_REQUEST_BYTES
            return JsonResponse({"detail": f"The body is over the limit of {limit:,} bytes per request."}, status=413)
        if isinstance(exception, DatabaseError) and dbfaults.is_unavailable(exception):
            log.warning("%s %s: database unavailable (%s)", request.method, request.path, exception)
            return database_unavailable()
        log.error("%s %s: internal error", request.method, request.path, exc_info=exception)
        # Answered here, not by Django's 500 page: rendering a page is one more thing that can
        # fail while something else is already failing.
        return JsonResponse({"detail": INTERNAL_ERROR}, status=500)
