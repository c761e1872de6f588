"""Signature checks, with signatures computed by each sender's documented algorithm."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from eventfeed.webhooks.verification import TOLERANCE, Verification, check, parse

BODY = b'{"action": "opened", "number": 7}'


def github_signature(secret: str, body: bytes) -> str:
    # GitHub: "sha256=" + the hex HMAC-SHA256 of the raw body, keyed with the webhook's secret.
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def stripe_signature(secret: str, body: bytes, t: int) -> str:
    # Stripe: HMAC-SHA256 of "{t}.{body}" with the endpoint's signing secret, hex, as v1.
    return f"t={t},v1=" + hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def standard_signature(secret: str, msg_id: str, t: int, body: bytes) -> str:
    # Standard Webhooks: base64 HMAC-SHA256 of "{id}.{timestamp}.{body}", keyed with the base64
    # part of the whsec_ secret, as "v1,<sig>"; several may be sent, space-separated.
    key = base64.b64decode(secret.removeprefix("whsec_"))
    return "v1," + base64.b64encode(hmac.new(key, f"{msg_id}.{t}.".encode() + body, hashlib.sha256).digest()).decode()


STANDARD_SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def test_it_accepts_githubs_signature_and_refuses_a_wrong_or_missing_one():
    v = Verification("github", "It's a Secret to Everybody")
    assert check(v, {"X-Hub-Signature-256": github_signature("It's a Secret to Everybody", BODY)}, BODY) is None
    assert "does not match" in check(v, {"X-Hub-Signature-256": github_signature("other", BODY)}, BODY)
    assert "does not match" in check(v, {"X-Hub-Signature-256": github_signature("It's a Secret to Everybody", BODY + b" ")}, BODY)
    assert "missing" in check(v, {}, BODY)


def test_it_matches_githubs_documented_example():
    # The example in GitHub's "Validating webhook deliveries".
    v = Verification("github", "It's a Secret to Everybody")
    sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert check(v, {"X-Hub-Signature-256": sig}, b"Hello, World!") is None


def test_it_accepts_stripes_signature_within_the_tolerance_only():
    now = 1_700_000_000
    v = Verification("stripe", "whsec_test_secret")
    assert check(v, {"Stripe-Signature": stripe_signature("whsec_test_secret", BODY, now - 10)}, BODY, now=now) is None
    late = stripe_signature("whsec_test_secret", BODY, now - TOLERANCE - 1)
    assert "more than 300 seconds" in check(v, {"Stripe-Signature": late}, BODY, now=now)
    assert "more than 300 seconds" in check(v, {"Stripe-Signature": stripe_signature("whsec_test_secret", BODY, now + TOLERANCE + 1)}, BODY, now=now)
    assert "No v1 signature" in check(v, {"Stripe-Signature": stripe_signature("whsec_other", BODY, now)}, BODY, now=now)
    assert "needs t= and v1=" in check(v, {"Stripe-Signature": f"t={now}"}, BODY, now=now)
    assert "whole number" in check(v, {"Stripe-Signature": "t=soon,v1=ab"}, BODY, now=now)


def test_it_accepts_any_of_stripes_v1_signatures_while_a_secret_is_rolled():
    now = int(time.time())
    v = Verification("stripe", "whsec_new")
    old = stripe_signature("whsec_old", BODY, now).split(",")[1]
    new = stripe_signature("whsec_new", BODY, now).split(",")[1]
    assert check(v, {"Stripe-Signature": f"t={now},{old},{new},v0=deadbeef"}, BODY) is None


def test_it_accepts_standard_webhooks_signatures_within_the_tolerance_only():
    now = 1_700_000_000
    v = Verification("standard-webhooks", STANDARD_SECRET)
    headers = {"webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "webhook-timestamp": str(now),
               "webhook-signature": "v1,bm9wZQ== " + standard_signature(STANDARD_SECRET, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", now, BODY)}
    assert check(v, headers, BODY, now=now) is None
    assert "No v1 signature" in check(v, headers, BODY + b"x", now=now)
    assert "more than 300 seconds" in check(v, headers, BODY, now=now + TOLERANCE + 1)
    # The id is signed: another message id with the same signature fails.
    assert "No v1 signature" in check(v, {**headers, "webhook-id": "msg_other"}, BODY, now=now)
    assert "all required" in check(v, {"webhook-id": "x"}, BODY, now=now)


def test_it_checks_a_shared_secret_header():
    v = Verification("shared-secret-header", "s3cret", "X-Token")
    assert check(v, {"X-Token": "s3cret"}, BODY) is None
    assert "does not hold" in check(v, {"X-Token": "s3cre"}, BODY)
    assert "missing" in check(v, {}, BODY)


def test_it_never_shows_the_secret():
    v = Verification("github", "abc")
    assert v.as_json() == {"kind": "github", "secret_set": True}
    assert Verification("shared-secret-header", "abc", "").as_json() == {"kind": "shared-secret-header", "secret_set": True, "header": "X-Webhook-Secret"}


@pytest.mark.parametrize("value, path", [
    ({"kind": "gitlab", "secret": "x"}, "verification.kind"),
    ({"kind": "github"}, "verification.secret"),
    ({"kind": "github", "secret": "  "}, "verification.secret"),
    ({"kind": "github", "secret": 5}, "verification.secret"),
    ({"kind": "github", "secret": "a\nb"}, "verification.secret"),
    ({"kind": "github", "secret": "x" * 1001}, "verification.secret"),
    ({"kind": "standard-webhooks", "secret": "whsec_not base64!"}, "verification.secret"),
    ({"kind": "shared-secret-header", "secret": "x", "header": "Bad Header"}, "verification.header"),
    ({"kind": "shared-secret-header", "secret": "x", "header": "Authorization"}, "verification.header"),
    ({"kind": "github", "secret": "x", "header": "X-A"}, "verification.header"),
    ({"kind": "none", "extra": 1}, "verification.extra"),
    ("github", "verification"),
])
def test_it_names_what_is_wrong_with_a_verification(value, path):
    found, problems = parse(value)
    assert found is None
    assert path in [p for p, _ in problems]


def test_it_keeps_the_secret_when_a_client_sends_back_what_it_read():
    current = Verification("github", "kept")
    found, _ = parse({"kind": "github", "secret_set": True}, current)
    assert found == current
    # Another kind needs its own secret.
    assert parse({"kind": "stripe"}, current)[0] is None
