"""Starting points for the common senders: a template that works with what they send and the
verification they sign with. Dynamic values go through `tojson`, so a quote or a newline in
what a sender sends can never break the event's JSON."""

from __future__ import annotations

GITHUB = """\
{% set repo = body.repository.full_name if body.repository is defined else (body.organization.login if body.organization is defined else "unknown") %}
{
  "event": {{ ("github." ~ headers["X-GitHub-Event"]|default("unknown") ~ ("." ~ body.action if body.action is defined else "")) | tojson }},
  {% if headers["X-GitHub-Delivery"] is defined %}"id": {{ headers["X-GitHub-Delivery"] | tojson }},{% endif %}
  "resource": {
    "prefect.resource.id": {{ ("github.repository." ~ repo) | tojson }},
    "prefect.resource.name": {{ repo | tojson }}
  },
  "related": [
    {% if body.sender is defined %}{"prefect.resource.id": {{ ("github.user." ~ body.sender.login) | tojson }},
     "prefect.resource.role": "sender", "prefect.resource.name": {{ body.sender.login | tojson }}}{% endif %}
  ],
  "payload": {"body": {{ body | tojson }}}
}"""

STRIPE = """\
{% set object = body.data.object if body.data is defined else {} %}
{
  "event": {{ ("stripe." ~ body.type|default("unknown")) | tojson }},
  "resource": {
    "prefect.resource.id": {{ ("stripe." ~ object.object|default("object") ~ "." ~ object.id|default("unknown")) | tojson }},
    "prefect.resource.name": {{ (object.description or object.id or "Stripe") | tojson }}
  },
  "related": [
    {"prefect.resource.id": {{ ("stripe.event." ~ body.id|default("unknown")) | tojson }}, "prefect.resource.role": "stripe-event"}
  ],
  "payload": {"livemode": {{ body.livemode|default(false) | tojson }}, "object": {{ object | tojson }}}
}"""

GENERIC_JSON = """\
{
  "event": {{ (body.event if body.event is defined and body.event is string else "webhook.received") | tojson }},
  "resource": {
    "prefect.resource.id": {{ (body.resource if body.resource is defined and body.resource is string else "webhook.sender") | tojson }}
  },
  "payload": {"body": {{ body | tojson }}}
}"""

CLOUDEVENTS = "{{ body|from_cloud_event(headers) }}"

# name → what the form shows and fills. `generate_secret`: the page makes one up for the sender
# to be given; otherwise the sender issues it (Stripe shows a whsec_… secret per endpoint).
PRESETS = {
    "github": {
        "label": "GitHub",
        "template": GITHUB,
        "verification": "github",
        "generate_secret": True,
        "hint": "In the repository's Settings → Webhooks, paste this URL, choose Content type application/json, and paste the same secret.",
    },
    "stripe": {
        "label": "Stripe",
        "template": STRIPE,
        "verification": "stripe",
        "generate_secret": False,
        "hint": "Add this URL as an endpoint in Stripe's Developers → Webhooks, then paste its signing secret (whsec_…) here.",
    },
    "generic": {
        "label": "Generic JSON",
        "template": GENERIC_JSON,
        "verification": "shared-secret-header",
        "generate_secret": True,
        "hint": "POST any JSON; send the secret in an X-Webhook-Secret header. \"event\" and \"resource\" strings in the body are used when present.",
    },
    "cloudevents": {
        "label": "CloudEvents",
        "template": CLOUDEVENTS,
        "verification": "none",
        "generate_secret": False,
        "hint": "Structured (application/cloudevents+json) or binary (ce-* headers) CloudEvents; the URL is the secret.",
    },
}

# What each sender's request looks like, for the editor's preview before the first one arrives.
SAMPLES = {
    "github": {
        "method": "POST",
        "headers": {"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/abc123", "X-GitHub-Event": "push",
                    "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
        "body": '{"ref": "refs/heads/main", "repository": {"full_name": "acme/shop", "html_url": "https://github.com/acme/shop"}, '
                '"sender": {"login": "octocat"}, "head_commit": {"id": "6dcb09b", "message": "Fix the basket"}}',
    },
    "stripe": {
        "method": "POST",
        "headers": {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"},
        "body": '{"id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "object": "event", "type": "payment_intent.succeeded", "livemode": false, '
                '"created": 1686089970, "data": {"object": {"id": "pi_3NG8Du2eZvKYlo2C0", "object": "payment_intent", '
                '"amount": 2000, "currency": "usd", "description": "Order #1042"}}}',
    },
    "generic": {
        "method": "POST",
        "headers": {"Content-Type": "application/json"},
        "body": '{"event": "deploy.finished", "resource": "ci.pipeline.web", "status": "ok", "duration_s": 312}',
    },
    "cloudevents": {
        "method": "POST",
        "headers": {"Content-Type": "application/cloudevents+json"},
        "body": '{"specversion": "1.0", "id": "A234-1234-1234", "source": "/mycontext/storage", "type": "com.example.object.created", '
                '"subject": "invoices/2026-11.pdf", "time": "2026-11-21T09:30:00Z", "data": {"bucket": "invoices"}}',
    },
}
