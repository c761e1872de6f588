"""Who sent this request? Signature checks for the common webhook senders.

Each scheme is the sender's documented algorithm; every comparison is constant-time
(hmac.compare_digest), and schemes that sign a timestamp refuse one outside TOLERANCE, so a
captured request cannot be replayed later.

- github: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.
- stripe: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>[,v1=…]`.
- standard-webhooks: `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64
  HMAC-SHA256(key, "<id>.<timestamp>.<body>")> …`, the key being the base64 after `whsec_`.
- shared-secret-header: a header (`X-Webhook-Secret` unless named) that carries the secret itself.
- none: the slug is the only secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any, Mapping

KINDS = ("none", "github", "stripe", "standard-webhooks", "shared-secret-header")
DEFAULT_SECRET_HEADER = "X-Webhook-Secret"
# Stripe's libraries and the Standard Webhooks spec both use five minutes.
TOLERANCE = 300
MAX_SECRET = 1000


@dataclass
class Verification:
    kind: str = "none"
    secret: str = ""
    header: str = ""

    @property
    def secret_header(self) -> str:
        """The header that carries the secret itself, which nothing may show: "" for the
        signing kinds, whose headers carry only signatures."""
        return (self.header or DEFAULT_SECRET_HEADER) if self.kind == "shared-secret-header" else ""

    def as_json(self) -> dict[str, Any]:
        """What the API and the pages show: never the secret, only whether one is set."""
        shown: dict[str, Any] = {"kind": self.kind}
        if self.kind != "none":
            shown["secret_set"] = bool(self.secret)
        if self.kind == "shared-secret-header":
            shown["header"] = self.header or DEFAULT_SECRET_HEADER
        return shown

    def as_stored(self) -> dict[str, Any]:
        stored: dict[str, Any] = {"kind": self.kind}
        if self.kind != "none":
            stored["secret"] = self.secret
        if self.kind == "shared-secret-header":
            stored["header"] = self.header or DEFAULT_SECRET_HEADER
        return stored


def from_stored(value: Mapping[str, Any] | None) -> Verification:
    value = value or {}
    return Verification(value.get("kind") or "none", value.get("secret") or "", value.get("header") or "")


def parse(value: Any, current: Verification | None = None) -> tuple[Verification | None, list[tuple[str, str]]]:
    """A verification from API or form input, or (None, [(path, rule), …]).

    A secret left out keeps the current one when the kind does not change, so a client can send
    back what it read (which never holds the secret)."""
    problems: list[tuple[str, str]] = []
    if value is None:
        value = {"kind": "none"}
    if not isinstance(value, dict):
        return None, [("verification", "must be an object like {\"kind\": \"github\", \"secret\": \"...\"}")]
    unknown = set(value) - {"kind", "secret", "header", "secret_set"}
    for key in sorted(unknown):
        problems.append((f"verification.{key}", "is not a field of a verification (kind, secret, header)"))
    kind = value.get("kind", "none")
    if kind not in KINDS:
        problems.append(("verification.kind", f"must be one of {', '.join(KINDS)}"))
        return None, problems
    secret = value.get("secret")
    if secret is None and current is not None and current.kind == kind:
        secret = current.secret
    header = value.get("header") or ""
    if kind != "none":
        if not isinstance(secret, str) or not secret.strip():
            problems.append(("verification.secret", f"is required for {kind}: the secret the sender signs with"))
        elif len(secret) > MAX_SECRET or any(c in secret for c in "\r\n\x00"):
            problems.append(("verification.secret", f"must be one line of at most {MAX_SECRET} characters"))
        elif kind == "standard-webhooks" and _standard_key(secret) is None:
            problems.append(("verification.secret", "must be whsec_ followed by base64, as the sender shows it"))
    if kind == "shared-secret-header":
        if not isinstance(header, str) or (header and not _token(header)):
            problems.append(("verification.header", "must be an HTTP header name such as X-Webhook-Secret"))
        elif header.lower() in ("authorization", "cookie"):
            # Both are removed before anything else sees the request.
            problems.append(("verification.header", "cannot be Authorization or Cookie: name a header of its own"))
    elif "header" in value and value["header"]:
        problems.append(("verification.header", "is only for shared-secret-header"))
    if problems:
        return None, problems
    return Verification(kind, secret.strip() if kind != "none" else "", header if kind == "shared-secret-header" else ""), []


def _token(name: str) -> bool:
    return bool(name) and len(name) <= 100 and all(c.isascii() and (c.isalnum() or c in "!#$%&'*+-.^_`|~") for c in name)


def _standard_key(secret: str) -> bytes | None:
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True) or None
    except (binascii.Error, ValueError):
        return None


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def check(verification: Verification, headers: Mapping[str, str], body: bytes, now: float | None = None) -> str | None:
    """None when the request is from the sender; else why not, said so the sender can fix it
    (never with the expected signature)."""
    kind = verification.kind
    if kind == "none":
        return None
    now = time.time() if now is None else now
    secret = verification.secret.encode()
    if kind == "github":
        sent = headers.get("X-Hub-Signature-256", "")
        if not sent:
            return "The X-Hub-Signature-256 header is missing."
        expected = "sha256=" + _hmac(secret, body).hex()
        return None if hmac.compare_digest(sent.strip().encode(), expected.encode()) else "The X-Hub-Signature-256 signature does not match the body."
    if kind == "stripe":
        return _stripe(secret, headers.get("Stripe-Signature", ""), body, now)
    if kind == "standard-webhooks":
        return _standard(verification.secret, headers, body, now)
    if kind == "shared-secret-header":
        name = verification.secret_header
        sent = headers.get(name)
        if sent is None:
            return f"The {name} header is missing."
        return None if hmac.compare_digest(sent.strip().encode(), secret) else f"The {name} header does not hold the secret."
    return f"Unknown verification kind {kind!r}."


def _timestamp(text: str, now: float, header: str) -> str | None:
    try:
        sent = int(text)
    except ValueError:
        return f"The {header} timestamp is not a whole number of seconds."
    if abs(now - sent) > TOLERANCE:
        return f"The {header} timestamp is more than {TOLERANCE} seconds from now: a replay, or a clock that is off."
    return None


def _stripe(secret: bytes, header: str, body: bytes, now: float) -> str | None:
    if not header:
        return "The Stripe-Signature header is missing."
    timestamp, signatures = "", []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    if not timestamp or not signatures:
        return "The Stripe-Signature header needs t= and v1=."
    problem = _timestamp(timestamp, now, "Stripe-Signature")
    if problem:
        return problem
    expected = _hmac(secret, timestamp.encode() + b"." + body).hex().encode()
    # Any v1 may match: Stripe signs with every active secret while one is being rolled.
    if any(hmac.compare_digest(s.encode(), expected) for s in signatures):
        return None
    return "No v1 signature in Stripe-Signature matches the body."


def _standard(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> str | None:
    msg_id, timestamp, signatures = (headers.get(h, "") for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (msg_id and timestamp and signatures):
        return "The webhook-id, webhook-timestamp and webhook-signature headers are all required."
    problem = _timestamp(timestamp, now, "webhook-timestamp")
    if problem:
        return problem
    key = _standard_key(secret)
    if key is None:
        return "The webhook's secret is not whsec_ followed by base64."
    expected = base64.b64encode(_hmac(key, f"{msg_id}.{timestamp}.".encode() + body))
    for signature in signatures.split():
        version, _, value = signature.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return None
    return "No v1 signature in webhook-signature matches the body."
