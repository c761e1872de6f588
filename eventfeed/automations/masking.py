"""Webhook header secrets on the automation pages: shown masked, kept on save when unchanged.

A call-webhook action's headers often carry a token (`Authorization: Bearer …`, `X-Api-Key`).
The automation page and the editor show every header value but a few plainly public ones as
MASK; the editor sends MASK back for a header the user did not touch, and keep_secrets puts the
stored value back before the actions are validated and saved.
"""

from __future__ import annotations

import copy

from eventfeed.events.problems import Problems

from .exchanges import MASK  # the one mask every page shows for a secret

# Header values that never carry a secret: shown as they are.
PUBLIC_HEADERS = {"content-type", "accept", "user-agent", "content-encoding", "accept-encoding"}


def _webhook_headers(action) -> dict | None:
    if isinstance(action, dict) and action.get("type") in ("call-webhook", "eventfeed-call-webhook"):
        headers = action.get("headers")
        return headers if isinstance(headers, dict) else None
    return None


def mask_secrets(actions: list) -> list:
    """A copy of the actions with every non-public webhook header value replaced by MASK."""
    out = copy.deepcopy(actions) if isinstance(actions, list) else actions
    for action in out if isinstance(out, list) else []:
        headers = _webhook_headers(action)
        for name in list(headers or {}):
            if name.lower() not in PUBLIC_HEADERS and isinstance(headers[name], str) and headers[name]:
                headers[name] = MASK
    return out


def _stored_value(old_actions: list, index: int, action: dict, name: str) -> str | None:
    """The saved value of header `name` for the action at `index`: the action at the same place
    when it is a webhook with that header, else the first saved webhook to the same URL with it."""
    candidates = []
    if 0 <= index < len(old_actions):
        candidates.append(old_actions[index])
    candidates += [a for a in old_actions if isinstance(a, dict) and a.get("url") == action.get("url")]
    for old in candidates:
        headers = _webhook_headers(old) or {}
        for old_name, value in headers.items():
            if old_name.lower() == name.lower() and value != MASK:
                return value
    return None


def keep_secrets(actions, old_actions: list | None, path: str = "actions") -> tuple[object, list[tuple[str, str]]]:
    """The actions with each MASK header value replaced by the stored one; a MASK with nothing
    stored behind it is a problem (path, rule), never saved as the literal mask."""
    if not isinstance(actions, list):
        return actions, []
    problems = Problems()
    old_actions = old_actions or []
    out = copy.deepcopy(actions)
    for i, action in enumerate(out):
        headers = _webhook_headers(action)
        for name, value in (headers or {}).items():
            if value != MASK:
                continue
            stored = _stored_value(old_actions, i, action, name)
            if stored is None:
                problems.fail(f"{path}[{i}].headers.{name}", "is masked but no value is saved for it: type the value")
            else:
                headers[name] = stored
    return out, problems.problems
