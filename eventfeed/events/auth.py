"""API keys: how the HTTP API and the websocket doors know who is calling."""

from __future__ import annotations

import base64
import binascii
from functools import wraps

from django.http import JsonResponse
from django.utils import timezone

from eventfeed import throttle

from .models import ApiKey, hash_key


def find_key(raw: str | None) -> ApiKey | None:
    """The key for this raw secret (revoked or not), or None. Marks an active key used, at most
    once a minute so that a busy producer does not write on every request."""
    if not raw:
        return None
    key = ApiKey.objects.filter(key_hash=hash_key(raw.strip())).first()
    if key is not None and key.revoked is None:
        now = timezone.now()
        if key.last_used is None or (now - key.last_used).total_seconds() > 60:
            ApiKey.objects.filter(pk=key.pk).update(last_used=now)
    return key


def check_key(raw: str | None, address: str | None) -> tuple[ApiKey | None, int | None]:
    """(the key for this raw secret or None, seconds to wait when the address is throttled).

    Only presented keys count: a wrong one counts against the address (eventfeed/throttle.py),
    and a throttled address is refused even with a right key, since its guess may just have hit."""
    if not raw:
        return None, None
    wait = throttle.key_retry_after(address)
    if wait is not None:
        return None, wait
    key = find_key(raw)
    if key is None:
        throttle.wrong_key(address)
    return key, None


def key_from_header(header: str) -> tuple[str | None, str | None]:
    """(raw key, problem) from an Authorization header.

    `Bearer <key>` is what curl users and PREFECT_API_KEY send; `Basic <base64>` is what the
    Prefect SDK sends when PREFECT_API_AUTH_STRING is set to the key.
    """
    if not header:
        return None, "missing"
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip(), None
    if scheme == "basic":
        try:
            return base64.b64decode(value.strip(), validate=True).decode(), None
        except (binascii.Error, UnicodeDecodeError):
            return None, "malformed"
    return None, "scheme"


def api_error(status: int, detail: str, **extra) -> JsonResponse:
    return JsonResponse({"detail": detail, **extra}, status=status)


def api_key_required(view=None, *, allow_session: bool = False):
    """401 for no key, 403 for a wrong or revoked one; the key lands on request.api_key.

    With allow_session, a signed-in browser session is accepted too (the feed's own pages
    call the read API).
    """

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            header = request.headers.get("Authorization", "")
            if allow_session and not header and request.user.is_authenticated:
                request.api_key = None
                return view(request, *args, **kwargs)
            raw, problem = key_from_header(header)
            if problem == "missing":
                return api_error(401, "Authentication required: send 'Authorization: Bearer <API key>'.")
            if problem is not None:
                return api_error(401, "Unsupported Authorization header: use 'Bearer <API key>'.")
            key, wait = check_key(raw, request.META.get("REMOTE_ADDR"))
            if wait is not None:
                response = api_error(429, throttle.too_many_wrong_keys_message(wait), retry_after=wait)
                response["Retry-After"] = str(wait)
                return response
            if key is None:
                return api_error(403, "This API key is not valid.")
            if key.revoked is not None:
                return api_error(403, f"This API key ({key.name}) was revoked on {key.revoked:%Y-%m-%d %H:%M} UTC.")
            request.api_key = key
            return view(request, *args, **kwargs)

        wrapper.csrf_exempt = True
        return wrapper

    return decorate(view) if view is not None else decorate
