// The automation editor: the form fields and the JSON editor show the same trigger; every
// change is checked by the server (errors name the JSON path), which also returns the
// one-sentence description and the preview over the stored events.

import { renderTimes } from "./lib/times.js";
import { actionsEditor } from "./lib/actions_editor.js";

const form = document.getElementById("automation-form");
const textarea = document.getElementById("id_trigger");
const actionsArea = document.getElementById("id_actions");
const errors = document.getElementById("trigger-errors");
const sentence = document.getElementById("trigger-sentence");
const fields = [...document.querySelectorAll("#trigger-fields [data-field]")];
const compositeNote = document.getElementById("composite-note");
const preview = document.getElementById("preview");
const range = document.getElementById("preview-range");
const summary = document.getElementById("preview-summary");
const firingsList = document.getElementById("preview-firings");
const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;

let trigger = null;

function parseJSON() {
  try {
    return { value: JSON.parse(textarea.value), error: null };
  } catch (e) {
    return { value: null, error: e.message };
  }
}

/** A trigger problem's field: `trigger.within` → the Within input, `trigger.match…` → Resource id. */
function fieldFor(path) {
  const top = (path.match(/^trigger\.([a-z_]+)/) || [])[1];
  return top ? fields.find((input) => input.dataset.field.split(".")[0] === top) : null;
}

function showFieldErrors(list) {
  for (const slot of document.querySelectorAll("#trigger-fields .au-error")) slot.remove();
  for (const input of fields) input.removeAttribute("aria-invalid");
  for (const item of list) {
    const input = fieldFor(item.path || "");
    if (!input) continue;
    let slot = input.parentElement.querySelector(".au-error");
    if (!slot) {
      slot = document.createElement("span");
      slot.className = "au-error";
      input.after(slot);
    }
    slot.textContent = (slot.textContent ? `${slot.textContent} ` : "") + `${item.path.replace(/^trigger\./, "")} ${item.rule}`;
    input.setAttribute("aria-invalid", "true");
  }
}

function showErrors(list) {
  showFieldErrors(list);
  errors.hidden = list.length === 0;
  errors.innerHTML = "";
  const ul = document.createElement("ul");
  for (const item of list) {
    const li = document.createElement("li");
    if (item.path) {
      const code = document.createElement("code");
      code.textContent = item.path;
      li.append(code, " ");
    }
    li.append(item.rule);
    ul.append(li);
  }
  errors.append(ul);
}

// -- form fields <-> trigger ------------------------------------------------------------------

function related(t) {
  return Array.isArray(t.match_related) ? (t.match_related[0] || {}) : (t.match_related || {});
}

function read(t, path) {
  if (path.startsWith("match.")) return (t.match || {})[path.slice(6)];
  if (path.startsWith("match_related.")) return related(t)[path.slice(14)];
  return t[path];
}

function write(t, path, value) {
  const empty = value === undefined || (Array.isArray(value) && value.length === 0) || value === "";
  const into = (obj, key) => {
    if (empty) delete obj[key];
    else obj[key] = Array.isArray(value) && value.length === 1 ? value[0] : value;
  };
  if (path.startsWith("match.")) {
    t.match = { ...(t.match || {}) };
    into(t.match, path.slice(6));
  } else if (path.startsWith("match_related.")) {
    const spec = { ...related(t) };
    into(spec, path.slice(14));
    t.match_related = spec;
  } else {
    t[path] = value;
  }
}

function fieldValue(input) {
  if (input.type === "number") return input.value === "" ? undefined : Number(input.value);
  if (input.hasAttribute("data-list")) return input.value.split(",").map((s) => s.trim()).filter(Boolean);
  return input.value;
}

function fillFields() {
  const composite = trigger && trigger.type && trigger.type !== "event";
  compositeNote.hidden = !composite;
  for (const input of fields) {
    input.disabled = !trigger || composite;
    if (!trigger || composite || input === document.activeElement) continue;
    const value = read(trigger, input.dataset.field);
    input.value = Array.isArray(value) ? value.join(", ") : value ?? "";
  }
}

function setTrigger(next, { fromText = false } = {}) {
  trigger = next;
  if (!fromText) textarea.value = JSON.stringify(trigger, null, 2);
  fillFields();
  schedule();
}

for (const input of fields) {
  input.addEventListener("input", () => {
    if (!trigger) return;
    const next = structuredClone(trigger);
    write(next, input.dataset.field, fieldValue(input));
    setTrigger(next);
  });
}

textarea.addEventListener("input", () => {
  const { value, error } = parseJSON();
  if (error) {
    showErrors([{ path: "trigger", rule: `is not valid JSON: ${error}` }]);
    sentence.textContent = "";
    trigger = null;
    check();
    return;
  }
  setTrigger(value, { fromText: true });
});

// -- widenings: each radio sets some trigger fields --------------------------------------------

for (const radio of document.querySelectorAll("#widenings input[type=radio]")) {
  radio.addEventListener("change", () => {
    if (!trigger) return;
    const next = { ...trigger, ...JSON.parse(radio.dataset.set) };
    // "Don't observe" waits, after this event, for the events chosen under "Which events".
    if (next.posture === "Proactive" && next.after.length === 0) next.after = trigger.expect;
    setTrigger(next);
  });
}

// -- tabs ---------------------------------------------------------------------------------------

// Two tab groups (trigger, actions): each switches the panes of its own card.
function selectTab(section, name) {
  for (const tab of section.querySelectorAll(".au-tab")) tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
  for (const pane of section.querySelectorAll(".au-pane")) pane.hidden = pane.dataset.pane !== name;
}

for (const tab of document.querySelectorAll(".au-tab")) {
  tab.addEventListener("click", () => selectTab(tab.closest("section"), tab.dataset.tab));
}

// -- actions: a form per action over the Actions JSON -------------------------------------------

const editorData = JSON.parse(document.getElementById("editor-data").textContent);
const actionsSection = document.getElementById("actions-section");
const actions = actionsEditor({
  textarea: actionsArea,
  list: document.getElementById("action-list"),
  broken: document.getElementById("actions-json-broken"),
  jsonError: document.getElementById("actions-json-error"),
  summary: document.getElementById("actions-errors"),
  examples: JSON.parse(document.getElementById("action-examples").textContent),
  channels: editorData.channels,
  automations: editorData.automations,
  selectTab: (name) => selectTab(actionsSection, name),
});
actions.showProblems(editorData.problems.actions);

// -- server check: sentence, path-named errors, preview -----------------------------------------

let timer = null;
let seq = 0;

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(check, 250);
}

async function check() {
  if (!trigger) {
    // Nothing to check until the JSON reads: say so rather than "Checking…" for ever.
    const { error } = parseJSON();
    summary.textContent = error
      ? `The trigger's JSON does not read (${error}): fix it in the trigger's JSON tab to see a preview.`
      : "Fix the trigger to see a preview.";
    firingsList.innerHTML = "";
    return;
  }
  const mine = ++seq;
  preview.setAttribute("aria-busy", "true");
  let body;
  try {
    const response = await fetch(preview.dataset.url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ trigger, range: range.value }),
      credentials: "same-origin",
    });
    body = await response.json();
  } catch (e) {
    summary.textContent = "Could not reach the server to check this trigger.";
    return;
  } finally {
    if (mine === seq) preview.removeAttribute("aria-busy");
  }
  if (mine !== seq) return;
  showErrors(body.errors || []);
  if (body.errors && body.errors.length) {
    sentence.textContent = "";
    summary.textContent = "Fix the trigger to see a preview.";
    firingsList.innerHTML = "";
    return;
  }
  sentence.textContent = body.sentence;
  const p = body.preview;
  const span = p.range === "7d" ? "7 days" : "24 hours";
  summary.textContent = `In the last ${span}, ${p.matched} stored event${p.matched === 1 ? " matches" : "s match"}; ` +
    `it would have fired ${p.fired} time${p.fired === 1 ? "" : "s"}` +
    (p.resolved ? ` and resolved ${p.resolved} time${p.resolved === 1 ? "" : "s"}.` : ".") +
    (p.capped ? " (Replayed over the first 200,000 candidates.)" : "");
  firingsList.innerHTML = "";
  // The replay's timeline: what would have fired, when, for which bucket.
  for (const f of p.timeline) {
    const li = document.createElement("li");
    li.className = `au-tl au-tl-${f.kind}`;
    const when = document.createElement("time");
    when.dateTime = f.at;
    when.dataset.abs = "";
    when.textContent = f.at;
    const kind = document.createElement("span");
    kind.className = `au-badge au-badge-${f.kind}`;
    kind.textContent = f.kind;
    li.append(when, " ", kind, " ");
    for (const [label, value] of Object.entries(f.labels || {})) {
      const code = document.createElement("code");
      code.textContent = `${label}=${value || "(none)"}`;
      li.append(code, " ");
    }
    if (f.event) {
      const a = document.createElement("a");
      a.href = f.url;
      a.textContent = `${f.event.event} · ${f.event.resource_id}`;
      li.append(a);
    } else {
      li.append("no event in the window");
    }
    firingsList.append(li);
  }
  renderTimes(firingsList); // in the zone the top bar's switch shows, as everywhere
}

range.addEventListener("change", check);
form.addEventListener("submit", () => {
  // What is saved is the JSON editor's content: make sure it holds the latest form edits.
  if (trigger && parseJSON().error === null) textarea.value = JSON.stringify(trigger, null, 2);
});

{
  const { value, error } = parseJSON();
  if (error) {
    // A refused save of a trigger that does not read: show the JSON it is in, and say what to fix.
    showErrors([{ path: "trigger", rule: `is not valid JSON: ${error}` }]);
    selectTab(document.querySelector("[aria-labelledby=trigger-h]"), "json");
    fillFields();
    check();
  } else {
    setTrigger(value, { fromText: true });
  }
}
