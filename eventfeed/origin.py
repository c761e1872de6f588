"""One Origin check for every websocket route (eventfeed/asgi.py wraps the whole router).

A browser sends the page's Origin with every websocket handshake and, with it, the site's session
cookie, whichever site the page is on: without this check any page could open /ws/notifications
as the signed-in user. A handshake with an Origin is accepted only from the site itself (a host in
ALLOWED_HOSTS) or from CSRF_TRUSTED_ORIGINS; one without an Origin comes from a program (the
Prefect SDK, websocket clients), which a browser page cannot pretend to be, and is accepted.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host


def origin_allowed(origin: str) -> bool:
    if origin.rstrip("/") in {o.rstrip("/") for o in settings.CSRF_TRUSTED_ORIGINS}:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    host, _ = split_domain_port(parts.netloc)
    return bool(host) and validate_host(host, settings.ALLOWED_HOSTS)


class OriginCheck:
    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            origins = [value for name, value in scope.get("headers", []) if name == b"origin"]
            if origins and not all(origin_allowed(o.decode("latin1")) for o in origins):
                return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
