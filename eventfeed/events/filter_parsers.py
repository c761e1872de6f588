"""The filter's readers: Prefect's EventFilter JSON (the read API, /api/events/out, automations'
filters) and the terms of the feed's query string (read by filtersets.FeedFilterSet), each
building the one EventFilter."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any, Iterable

from .filters import MAX_TEXT_QUERY, EventFilter, FilterError, LabelCondition, ResourceCondition, TextQuery
from .patterns import _kind
from .problems import NUL_RULE, Problems
from .schema import RESOURCE_ID


# -- building a filter from Prefect's EventFilter JSON ----------------------------------------

class JsonReader(Problems):
    """Reads JSON input, collecting everything wrong instead of stopping at the first: the API
    filters (events, automations) answer every problem at once."""

    def obj(self, value: Any, path: str, allowed: set[str]) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.wrong_type(path, "an object", value)
            return {}
        self.unknown_fields(value, path, allowed, path)
        return value

    def strings(self, value: Any, path: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.wrong_type(path, "a list of strings", value)
            return ()
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.wrong_type(f"{path}[{i}]", "a string", item)
            elif "\x00" in item:
                self.fail(f"{path}[{i}]", NUL_RULE)
            else:
                out.append(item)
        return tuple(out)

    def labels(self, value: Any, path: str) -> tuple[LabelCondition, ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            self.wrong_type(path, "an object of label: value or label: [values]", value)
            return ()
        out = []
        for key, patterns in value.items():
            values = self.strings(patterns, f"{path}[{key!r}]")
            if not values:
                self.fail(f'{path}["{key}"]', "needs at least one value")
                continue
            out.append(LabelCondition(key, values))
        return tuple(out)

    def conditions(self, value: Any, path: str, scope: str, allowed: set[str]) -> list[ResourceCondition]:
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        out = []
        for i, item in enumerate(items):
            p = f"{path}[{i}]" if isinstance(value, list) else path
            data = self.obj(item, p, allowed)
            pairs = []
            for j, pair in enumerate(data.get("resources_in_roles") or []):
                if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                    self.fail(f"{p}.resources_in_roles[{j}]", "must be a [resource id, role] pair")
                else:
                    pairs.append(tuple(pair))
            condition = ResourceCondition(
                scope=scope,
                ids=self.strings(data.get("id"), f"{p}.id"),
                id_prefixes=self.strings(data.get("id_prefix"), f"{p}.id_prefix"),
                roles=self.strings(data.get("role"), f"{p}.role"),
                pairs=tuple(pairs),
                labels=self.labels(data.get("labels"), f"{p}.labels"),
            )
            if not condition.is_empty:
                out.append(condition)
        return out


FILTER_KEYS = {"occurred", "event", "resource", "related", "any_resource", "id", "text", "order"}


def from_json(data: Any, path: str = "filter") -> EventFilter:
    """Prefect's EventFilter JSON (unknown keys refused, like Prefect's extra="forbid")."""
    r = JsonReader()
    data = r.obj(data, path, FILTER_KEYS)
    occurred = r.obj(data.get("occurred"), f"{path}.occurred", {"since", "until"})
    event = r.obj(data.get("event"), f"{path}.event", {"prefix", "exclude_prefix", "name", "exclude_name"})
    resource = r.obj(data.get("resource"), f"{path}.resource", {"id", "id_prefix", "labels", "distinct"})
    conditions = r.conditions(
        {k: v for k, v in resource.items() if k != "distinct"} or None, f"{path}.resource", "resource", {"id", "id_prefix", "labels"}
    )
    conditions += r.conditions(data.get("related"), f"{path}.related", "related", {"id", "role", "resources_in_roles", "labels"})
    conditions += r.conditions(data.get("any_resource"), f"{path}.any_resource", "any", {"id", "id_prefix", "labels"})
    distinct = r.boolean(resource.get("distinct", False), f"{path}.resource.distinct")
    ids = []
    id_filter = r.obj(data.get("id"), f"{path}.id", {"id"})
    for i, raw in enumerate(r.strings(id_filter.get("id"), f"{path}.id.id")):
        try:
            ids.append(uuid.UUID(raw))
        except ValueError:
            r.fail(f"{path}.id.id[{i}]", "must be a UUID")
    text = r.obj(data.get("text"), f"{path}.text", {"query"})
    query = text.get("query") or ""
    if not isinstance(query, str) or "\x00" in query:
        r.fail(f"{path}.text.query", "must be a string without NUL characters")
        query = ""
    elif len(query) > MAX_TEXT_QUERY:
        r.fail(f"{path}.text.query", f"is {len(query)} characters; the limit is {MAX_TEXT_QUERY}")
    elif problem := TextQuery.problem(query):
        r.fail(f"{path}.text.query", problem)
    order = data.get("order") or "DESC"
    if order not in ("ASC", "DESC"):
        r.fail(f"{path}.order", 'must be "ASC" or "DESC"')
    since = r.time(occurred.get("since"), f"{path}.occurred.since", optional=True)
    until = r.time(occurred.get("until"), f"{path}.occurred.until", optional=True)
    if since and until and since > until:
        r.fail(f"{path}.occurred", "since must not be after until")
    names = {key: r.strings(event.get(key), f"{path}.event.{key}") for key in ("name", "prefix", "exclude_name", "exclude_prefix")}
    if r.problems:
        raise FilterError(r.problems)
    return EventFilter(
        since=since,
        until=until,
        names=names["name"],
        prefixes=names["prefix"],
        exclude_names=names["exclude_name"],
        exclude_prefixes=names["exclude_prefix"],
        resources=tuple(conditions),
        ids=tuple(ids),
        text=query.strip(),
        distinct=bool(distinct),
        order=order,
    )


# -- building a filter from the feed's query string -------------------------------------------

RANGES = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
ROLE_PREFIX = re.compile(r"^([A-Za-z0-9_-]+):(?!//)")


def parse_event_terms(terms: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """`name`, `prefix.*`, `!name`, `!prefix.*` → the four event-name lists."""
    out = {"names": [], "prefixes": [], "exclude_names": [], "exclude_prefixes": []}
    for term in terms:
        term = term.strip()
        if not term:
            continue
        negate = term.startswith("!")
        term = term[1:] if negate else term
        if term.endswith("*"):
            out["exclude_prefixes" if negate else "prefixes"].append(term[:-1])
        else:
            out["exclude_names" if negate else "names"].append(term)
    return {k: tuple(v) for k, v in out.items()}


def parse_resource_term(term: str, scope: str) -> ResourceCondition:
    """One resource condition of the query string.

    `prefect.flow-run.abc` exact id; `prefect.flow-run.*` id prefix; `key=value` a label
    (value may use `*`, `?` and a leading `!`); on `related`, a leading `role:` restricts the
    role (`flow:prefect.flow.1`, `tag:*`, `work-pool:prefect.work-pool.type=kubernetes`).
    A leading `!` before all of that excludes: no resource there matches the rest
    (`!tag:prefect.tag.prod`, `!prefect.state-name=Failed`).
    """
    term = term.strip()
    if term.startswith("!") and len(term) > 1:
        return replace(parse_resource_term(term[1:], scope), negate=True)
    roles: tuple[str, ...] = ()
    if scope == "related":
        m = ROLE_PREFIX.match(term)
        if m and "=" not in term[: m.end()]:
            roles, term = (m.group(1),), term[m.end():]
    if term in ("", "*"):
        return ResourceCondition(scope=scope, roles=roles)
    if "=" in term:
        key, _, value = term.partition("=")
        return ResourceCondition(scope=scope, roles=roles, labels=(LabelCondition(key.strip(), (value.strip(),)),))
    kind = _kind(term)
    if term.startswith("!") or kind == "glob":
        return ResourceCondition(scope=scope, roles=roles, labels=(LabelCondition(RESOURCE_ID, (term,)),))
    if kind == "prefix":
        return ResourceCondition(scope=scope, roles=roles, id_prefixes=(term[:-1],))
    return ResourceCondition(scope=scope, roles=roles, ids=(term,))

