// The automation editor's actions: one small form per action, by kind, over the Actions JSON
// textarea, which stays what is saved. Editing a form rewrites the JSON; editing the JSON redraws
// the forms (when it reads). A refused save's problems, by JSON path (`actions[1].url`), are shown
// at the field or the action they name.

import { $, $$ } from "./dom.js";

const KINDS = {
  "call-webhook": "Call a webhook",
  "send-notification": "Send a notification",
  "emit-event": "Emit an event",
  "pause-automation": "Pause an automation",
  "resume-automation": "Resume an automation",
  "do-nothing": "Do nothing",
};
// Eventfeed's own forms of Prefect's two channel actions, as the API names them.
const OWN_FORMS = { "eventfeed-call-webhook": "call-webhook", "eventfeed-send-notification": "send-notification" };
const METHODS = ["POST", "PUT", "PATCH", "GET", "DELETE"];
// With a channel, Prefect's call-webhook takes only these fields (the rest would be refused).
const CHANNEL_FIELDS = { "call-webhook": ["type", "block_document_id", "payload"], "send-notification": ["type", "block_document_id", "subject", "body"] };

const kindOf = (action) => OWN_FORMS[action?.type] || action?.type;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === undefined || value === null) continue;
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function options(select, choices, value) {
  for (const [v, label] of choices) select.append(el("option", { value: v, selected: v === (value ?? "") }, label));
  return select;
}

function headersText(headers) {
  return Object.entries(headers || {}).map(([name, value]) => `${name}: ${value}`).join("\n");
}

/** "Name: value" lines → an object; lines without a colon are reported, not dropped silently. */
function readHeaders(text) {
  const headers = {};
  const bad = [];
  text.split("\n").forEach((line, n) => {
    if (!line.trim()) return;
    const colon = line.indexOf(":");
    if (colon < 1) bad.push(n + 1);
    else headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  });
  return { headers, bad };
}

export function actionsEditor({ textarea, list, broken, jsonError, summary, examples, channels, automations, selectTab }) {
  let actions = [];
  let readable = true;

  function writeJSON() {
    textarea.value = JSON.stringify(actions, null, 2);
  }

  function readJSON() {
    try {
      const value = JSON.parse(textarea.value || "[]");
      if (!Array.isArray(value)) return { error: "must be a list of actions ([…])" };
      return { value };
    } catch (e) {
      return { error: `is not valid JSON: ${e.message}` };
    }
  }

  function setBroken(message) {
    readable = !message;
    jsonError.hidden = readable;
    jsonError.textContent = message ? `The actions JSON ${message}` : "";
    broken.hidden = readable;
    list.hidden = !readable;
    for (const button of $$(".au-add-action")) button.disabled = !readable;
  }

  // -- one action's fields ------------------------------------------------------------------

  function field(i, key, label, control, hint) {
    control.dataset.key = key;
    const id = `action-${i}-${key.replace(/[^a-z0-9]+/gi, "-")}`;
    control.id = id;
    return el("div", { class: "au-action-field" },
      el("label", { for: id, text: label }),
      control,
      hint ? el("p", { class: "muted small", text: hint }) : null,
      el("p", { class: "au-error", "data-error-for": `actions[${i}].${key.split(".")[0]}`, hidden: true }));
  }

  function fieldsFor(action, i) {
    const kind = kindOf(action);
    const out = [];
    if (kind === "call-webhook" || kind === "send-notification") {
      const usable = channels.filter((c) => kind === "send-notification" || c.kind === "webhook");
      const none = kind === "call-webhook" ? "A URL (below)" : "In-app (and email to the addresses below)";
      const select = options(el("select"), [["", none], ...usable.map((c) => [c.id, `${c.name} (${c.kind})`])], action.block_document_id);
      out.push(field(i, "block_document_id", kind === "call-webhook" ? "Where" : "Channel", select));
    }
    const channel = Boolean(action.block_document_id);
    if (kind === "call-webhook") {
      if (!channel) {
        out.push(field(i, "url", "URL", el("input", { type: "url", value: action.url ?? "", placeholder: "https://example.com/hook", spellcheck: "false" })));
        out.push(field(i, "method", "Method", options(el("select"), METHODS.map((m) => [m, m]), action.method || "POST")));
        const headers = el("textarea", { rows: 3, spellcheck: "false", placeholder: "Authorization: Bearer …" });
        headers.value = headersText(action.headers);
        out.push(field(i, "headers", "Headers", headers, "One “Name: value” per line. Saved secrets show as •••••• and are kept unless you change them."));
      }
      const body = el("textarea", { rows: 4, spellcheck: "false" });
      body.value = action.payload ?? "";
      out.push(field(i, "payload", "Body template", body));
      if (!channel) out.push(field(i, "timeout", "Timeout (seconds)", el("input", { type: "number", min: "1", max: "60", step: "any", value: action.timeout ?? "" })));
    } else if (kind === "send-notification") {
      out.push(field(i, "subject", "Subject template", el("input", { type: "text", value: action.subject ?? "" })));
      const body = el("textarea", { rows: 3 });
      body.value = action.body ?? "";
      out.push(field(i, "body", "Body template", body));
      if (!channel) out.push(field(i, "to", "Also email (optional)", el("input", { type: "text", value: (action.to || []).join(", "), placeholder: "oncall@example.com, …" })));
    } else if (kind === "emit-event") {
      out.push(field(i, "event", "Event name template", el("input", { type: "text", value: action.event ?? "", spellcheck: "false" })));
      out.push(field(i, "resource.prefect.resource.id", "Resource id template",
        el("input", { type: "text", value: action.resource?.["prefect.resource.id"] ?? "", spellcheck: "false" }),
        "Other labels, related resources and the payload are edited in the Actions JSON tab."));
    } else if (kind === "pause-automation" || kind === "resume-automation") {
      const source = options(el("select"), [["inferred", "This automation"], ["selected", "Another automation"]], action.source || "inferred");
      out.push(field(i, "source", "Which automation", source));
      if (action.source === "selected") {
        const choices = [["", "Choose an automation…"], ...automations.map((a) => [a.id, a.name])];
        out.push(field(i, "automation_id", "Automation", options(el("select"), choices, action.automation_id)));
      }
    } else if (kind === "do-nothing") {
      out.push(el("p", { class: "muted small", text: "Records the firing (it appears in the feed); nothing else happens." }));
    } else {
      out.push(el("p", { class: "muted small", text: `“${action?.type}” has no form: edit it in the Actions JSON tab.` }));
    }
    return out;
  }

  function card(action, i) {
    const kind = kindOf(action);
    const typeSelect = options(el("select", { id: `action-${i}-type`, "data-key": "type" }),
      [...(KINDS[kind] ? [] : [[action?.type ?? "", action?.type ?? "(no type)"]]), ...Object.entries(KINDS)], kind);
    const n = i + 1;
    return el("li", { class: "au-action", "data-index": i },
      el("div", { class: "au-action-head" },
        el("label", { for: `action-${i}-type`, text: `Action ${n}` }), typeSelect,
        el("span", { class: "au-action-tools" },
          el("button", { type: "button", "data-move": "-1", "aria-label": `Move action ${n} up`, disabled: i === 0, text: "↑" }),
          el("button", { type: "button", "data-move": "1", "aria-label": `Move action ${n} down`, disabled: i === actions.length - 1, text: "↓" }),
          el("button", { type: "button", class: "danger", "data-remove": "", "aria-label": `Remove action ${n}`, text: "Remove" }))),
      el("p", { class: "au-error", "data-error-for": `actions[${i}]`, hidden: true }),
      el("div", { class: "au-action-fields" }, ...fieldsFor(action, i)));
  }

  function draw() {
    list.replaceChildren(...actions.map(card));
    if (!actions.length) list.append(el("li", { class: "muted small au-action-none", text: "No actions: firings are only recorded. Add one below." }));
  }

  // -- form → JSON --------------------------------------------------------------------------

  function update(control) {
    const i = Number(control.closest(".au-action").dataset.index);
    const key = control.dataset.key;
    const action = actions[i];
    let redraw = false;
    clearError(control);
    if (key === "type") {
      actions[i] = structuredClone(examples[control.value] || { type: control.value });
      redraw = true;
    } else if (key === "block_document_id") {
      const kind = kindOf(action);
      if (control.value) {
        for (const k of Object.keys(action)) if (!CHANNEL_FIELDS[kind].includes(k)) delete action[k];
        action.type = kind;
        action.block_document_id = control.value;
      } else {
        delete action.block_document_id;
        Object.assign(action, kind === "call-webhook" ? { url: "", method: "POST", headers: {}, timeout: 10, ...action } : { to: [], ...action });
      }
      redraw = true;
    } else if (key === "headers") {
      const { headers, bad } = readHeaders(control.value);
      action.headers = headers;
      if (bad.length) showError(control, `line ${bad.join(", ")} is not “Name: value”; it is left out`);
    } else if (key === "timeout") {
      if (control.value === "") delete action.timeout;
      else action.timeout = Number(control.value);
    } else if (key === "to") {
      action.to = control.value.split(",").map((s) => s.trim()).filter(Boolean);
    } else if (key === "resource.prefect.resource.id") {
      action.resource = { ...(action.resource || {}), "prefect.resource.id": control.value };
    } else if (key === "source") {
      action.source = control.value;
      if (control.value === "inferred") delete action.automation_id;
      else action.automation_id ??= null;
      redraw = true;
    } else if (key === "automation_id") {
      action.automation_id = control.value || null;
    } else {
      action[key] = control.value;
    }
    writeJSON();
    if (redraw) {
      draw();
      $(`[data-index="${i}"] [data-key="${key}"]`, list)?.focus();
    }
  }

  list.addEventListener("input", (event) => {
    if (event.target.dataset.key && event.target.tagName !== "SELECT") update(event.target);
  });
  list.addEventListener("change", (event) => {
    if (event.target.dataset.key && event.target.tagName === "SELECT") update(event.target);
  });
  list.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    const i = Number(button.closest(".au-action").dataset.index);
    if (button.hasAttribute("data-remove")) {
      actions.splice(i, 1);
      writeJSON();
      draw();
      ($(`[data-index="${Math.min(i, actions.length - 1)}"] select`, list) || $(".au-add-action"))?.focus();
    } else if (button.dataset.move) {
      const j = i + Number(button.dataset.move);
      [actions[i], actions[j]] = [actions[j], actions[i]];
      writeJSON();
      draw();
      $(`[data-index="${j}"] [data-move="${button.dataset.move}"]`, list)?.focus();
    }
  });
  for (const button of $$(".au-add-action")) {
    button.addEventListener("click", () => {
      if (!readable) return;
      actions.push(structuredClone(examples[button.dataset.kind]));
      writeJSON();
      draw();
      $(`[data-index="${actions.length - 1}"] select`, list)?.focus();
    });
  }

  // -- JSON → form --------------------------------------------------------------------------

  function fromJSON() {
    const { value, error } = readJSON();
    setBroken(error);
    if (error) return false;
    actions = value;
    draw();
    return true;
  }
  textarea.addEventListener("input", fromJSON);

  // -- problems, where they are -------------------------------------------------------------

  function clearError(control) {
    const slot = control.closest(".au-action-field")?.querySelector(".au-error");
    if (slot) {
      slot.hidden = true;
      slot.textContent = "";
    }
    control.removeAttribute("aria-invalid");
  }

  function showError(control, message) {
    const slot = control.closest(".au-action-field")?.querySelector(".au-error");
    if (!slot) return;
    slot.hidden = false;
    slot.textContent = message;
    control.setAttribute("aria-invalid", "true");
  }

  /** The error slot of the deepest field or action a JSON path names: `actions[0].headers.X`
   *  → the headers field of the first action, `actions[0].type` → the first action. */
  function slotFor(path) {
    let p = path;
    while (p) {
      const slot = $(`[data-error-for="${CSS.escape(p)}"]`, list);
      if (slot) return slot;
      const shorter = p.replace(/(\.[^.[\]]+|\[\d+\])$/, "");
      if (shorter === p) return null;
      p = shorter;
    }
    return null;
  }

  /** Each {path, rule} at the deepest field or action its path names; what has no place stays in
   *  the summary. A JSON that does not read opens the JSON tab, where its message is. */
  function showProblems(problems) {
    const unplaced = [];
    for (const problem of problems) {
      if (problem.json) {
        setBroken(problem.rule.replace(/^This /, ""));
        selectTab("json");
        unplaced.push(problem);
        continue;
      }
      const slot = slotFor(problem.path);
      if (!slot) {
        unplaced.push(problem);
        continue;
      }
      slot.hidden = false;
      const rest = problem.path.slice(slot.dataset.errorFor.length).replace(/^\./, "");
      slot.textContent = (slot.textContent ? `${slot.textContent} ` : "") + (rest ? `${rest} ${problem.rule}` : problem.rule);
      slot.closest(".au-action")?.classList.add("has-error");
      const control = slot.closest(".au-action-field")?.querySelector("[data-key]");
      control?.setAttribute("aria-invalid", "true");
    }
    if (!problems.length) return;
    const placed = problems.length - unplaced.length;
    const ul = el("ul");
    if (placed) ul.append(el("li", { text: `${placed} problem${placed === 1 ? "" : "s"} in the actions, each shown at its field.` }));
    for (const p of unplaced) ul.append(el("li", {}, el("code", { text: p.path }), " ", p.rule));
    summary.replaceChildren(ul);
    summary.hidden = false;
  }

  fromJSON();
  return { showProblems };
}
