"""What an action run sent and got back, for the firing history: the request (method, URL,
headers with secrets masked, body), the response (its status; its headers and body only when the
operator allowed the target, like the failure reason), the time it took, per attempt."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

BODY_SHOWN = 4096
KEPT_ATTEMPTS = 5
MASK = "••••••"
# Header names whose values are credentials: masked in what is stored and shown.
SECRET = re.compile(r"authorization|cookie|token|secret|signature|api[-_]?key|password|credential|session", re.I)


def headers_view(headers) -> dict[str, str]:
    return {name: (MASK if SECRET.search(name) else value) for name, value in dict(headers or {}).items()}


def url_view(url: str) -> str:
    """The URL without a password in it (https://user:secret@host/ → https://user:••••••@host/)."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _body(text: str) -> str:
    return text if len(text) <= BODY_SHOWN else text[:BODY_SHOWN] + f"… ({len(text) - BODY_SHOWN} more characters)"


def request_view(method: str, url: str, headers: dict, body: str) -> dict:
    return {"request": {"method": method, "url": url_view(url), "headers": headers_view(headers), "body": _body(body)}}


NOT_SHOWN = "(headers and body not shown: the target is not on EVENTFEED_OUTBOUND_ALLOW)"


def response_view(response) -> dict:
    """`response` is an outbound.Response. Past its status, what a target answered is shown only
    when the allowlist opened every hop: headers say as much as a body (a server's software and
    version, cookies, where it redirects), and an automation must not be a way to read them."""
    if not response.allowed:
        return {"status": response.status_code, "headers": {}, "body": NOT_SHOWN}
    return {"status": response.status_code, "headers": headers_view(response.headers), "body": _body(response.text)}


def record(run, exchange: dict, started: float, finished: float, attempt: int, error: str | None) -> None:
    """Append this attempt to the run's exchanges (the caller saves the run)."""
    entry = {"attempt": attempt, "ms": round((finished - started) * 1000, 1), **exchange}
    if error:
        entry["error"] = error
    run.exchanges = [*(run.exchanges or []), entry][-KEPT_ATTEMPTS:]
