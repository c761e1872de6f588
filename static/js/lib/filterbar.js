// The feed's filter bar: the absolute-range form, the event-name and resource pickers, and the
// keys that reach them. Every control ends in a plain GET of the feed URL.

import { $, $$, number } from "./dom.js";
import { MINUTE, HOUR, DAY, zone, onZoneChange } from "./times.js";
import { isoZ } from "./navigation.js";

// -- absolute range ---------------------------------------------------------------------------

function toInputValue(date) {
  const shifted = zone() === "utc" ? date : new Date(date.getTime() - date.getTimezoneOffset() * MINUTE);
  return shifted.toISOString().slice(0, 19);
}

function fromInputValue(value) {
  // A datetime-local value has no zone: it means the zone the switch shows.
  const date = new Date(zone() === "utc" ? `${value}Z` : value);
  return Number.isNaN(date.getTime()) ? null : date;
}

const PRESET_MS = { "15m": 15 * MINUTE, "1h": HOUR, "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY };

function fillRangeInputs() {
  const form = $("#range-form");
  if (!form) return;
  const params = new URL(location.href).searchParams;
  const now = new Date();
  const preset = PRESET_MS[params.get("range")] || DAY;
  for (const input of $$("[data-iso]", form)) {
    const iso = params.get(input.dataset.iso);
    let date = iso ? new Date(iso) : null;
    if (!params.get("since") && !params.get("until")) date = input.dataset.iso === "since" ? new Date(now - preset) : now;
    input.value = date && !Number.isNaN(date.getTime()) ? toInputValue(date) : "";
  }
}

function setUpRangeForm() {
  const form = $("#range-form");
  const toggle = $("[data-toggle='range-form']");
  if (!form || !toggle) return;
  toggle.setAttribute("aria-expanded", String(!form.hidden));
  toggle.addEventListener("click", () => {
    form.hidden = !form.hidden;
    toggle.setAttribute("aria-expanded", String(!form.hidden));
    if (!form.hidden) $("[data-iso]", form).focus();
  });
  form.addEventListener("submit", (event) => {
    for (const input of $$("[data-iso]", form)) {
      const hidden = form.elements[input.dataset.iso];
      const date = input.value ? fromInputValue(input.value) : null;
      hidden.value = date ? isoZ(date) : "";
      hidden.disabled = !date;
    }
    if (form.elements.since.disabled && form.elements.until.disabled) {
      event.preventDefault();
      $("[data-iso]", form).focus();
    }
  });
  fillRangeInputs();
}

// -- filter bar -------------------------------------------------------------------------------

function setUpPickers() {
  const form = $("#feed-filters");
  if (!form) return;
  const resourceInput = $("[data-resource-input]", form);
  const roleInput = $("[data-role-input]", form);

  for (const radio of $$("input[name='_scope']", form)) {
    radio.addEventListener("change", () => {
      resourceInput.name = radio.value;
      roleInput.hidden = radio.value !== "related";
      resourceInput.placeholder = radio.value === "related" ? "prefect.flow.* or key=value" : "prefect.flow-run.*";
    });
  }

  form.addEventListener("submit", () => {
    if (resourceInput.name === "related" && roleInput.value.trim()) {
      resourceInput.value = `${roleInput.value.trim()}:${resourceInput.value.trim()}`;
    }
    // Empty inputs would put `event=&any=` in the URL; `_scope` only steers the picker.
    for (const input of $$("input", form)) {
      if (input.name === "_scope" || !input.name || !input.value.trim()) input.disabled = true;
    }
  });

  // Resources and roles seen on this page, as suggestions; any id can still be typed.
  const ids = new Set($$("[data-resource]").map((el) => el.dataset.resource).filter(Boolean));
  $("#known-resources").replaceChildren(...[...ids].sort().slice(0, 500).map((id) => new Option(id)));
  const roles = new Set($$(".related .group[data-role]").map((el) => el.dataset.role).filter(Boolean));
  $("#known-roles").replaceChildren(...[...roles].sort().map((role) => new Option(role)));

  for (const picker of $$(".picker", form)) {
    picker.addEventListener("toggle", () => {
      if (!picker.open) return;
      for (const other of $$(".picker[open]", form)) if (other !== picker) other.open = false;
      $("input:not([type=radio]):not([hidden])", picker)?.focus();
      if (picker.id === "event-picker") loadNames(picker);
    });
  }
}

/** (Re)attach to the filter bar of the current page content. */
export function setUpFilterBar() {
  setUpRangeForm();
  setUpPickers();
}

/** Page-wide keys and clicks, registered once: the filter bar itself is replaced on every
 *  in-place filter change, so these look it up when they fire. */
export function startFilterBar() {
  document.addEventListener("click", (event) => {
    for (const picker of $$(".picker[open]")) if (!picker.contains(event.target)) picker.open = false;
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    for (const picker of $$(".picker[open]")) {
      picker.open = false;
      // Focus goes back to the control that opened the panel, not to <body>.
      $("summary", picker)?.focus();
    }
  });
  // The browser restores disabled inputs on back navigation from its cache: undo it.
  addEventListener("pageshow", () => $$("#feed-filters input").forEach((input) => (input.disabled = false)));
  onZoneChange(fillRangeInputs);
}

// -- event-name picker ------------------------------------------------------------------------

async function loadNames(picker) {
  if (picker.dataset.loaded) return;
  picker.dataset.loaded = "1";
  const box = $("[data-names]", picker);
  const input = $("[data-event-input]", picker);
  box.innerHTML = '<p class="muted small">Loading names…</p>';
  let groups;
  try {
    const response = await fetch(picker.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(String(response.status));
    groups = (await response.json()).groups;
  } catch {
    box.innerHTML = '<p class="muted small">The stored names could not be loaded; type a name above.</p>';
    delete picker.dataset.loaded;
    return;
  }
  if (!groups.length) {
    box.innerHTML = '<p class="muted small">No events in this range yet; type a name above.</p>';
    return;
  }
  box.replaceChildren(...groups.map(renderGroup));
  box.addEventListener("click", (event) => {
    const button = event.target.closest("[data-term]");
    if (!button) return;
    input.value = button.dataset.term;
    input.form.requestSubmit();
  });
  input.addEventListener("input", () => {
    const needle = input.value.replace(/^!/, "").replace(/\*$/, "").toLowerCase();
    for (const row of $$(".ns, .nm", box)) row.hidden = needle && !row.dataset.name.toLowerCase().includes(needle);
    for (const group of $$(".group", box)) group.hidden = !$$(".ns, .nm", group).some((row) => !row.hidden);
  });
}

function pickRow(cls, term, label, raw, count) {
  const row = document.createElement("div");
  row.className = cls;
  row.dataset.name = term;
  const pick = document.createElement("button");
  pick.type = "button";
  pick.className = "pick";
  pick.dataset.term = term;
  pick.title = `Show ${term}`;
  pick.textContent = label;
  if (raw) {
    const code = document.createElement("span");
    code.className = "raw";
    code.textContent = raw;
    pick.append(code);
  }
  const n = document.createElement("span");
  n.className = "n";
  n.textContent = number.format(count);
  const exclude = document.createElement("button");
  exclude.type = "button";
  exclude.className = "exclude";
  exclude.dataset.term = `!${term}`;
  exclude.title = `Hide ${term}`;
  exclude.textContent = "exclude";
  row.append(pick, n, exclude);
  return row;
}

function renderGroup(group) {
  const el = document.createElement("div");
  el.className = "group";
  el.append(pickRow("ns", group.prefix, group.prefix, "", group.count));
  for (const item of group.names) {
    const last = item.name.slice(group.namespace.length + 1) || item.name;
    el.append(pickRow("nm", item.name, last, item.name === last ? "" : item.name, item.count));
  }
  return el;
}

