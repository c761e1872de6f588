// The webhook editor: presets fill a working template and verification; the preview renders
// the template (on the server, in the same sandbox as real requests) against a kept request or
// a sample one, as you type.

const form = document.getElementById("webhook-form");
const data = JSON.parse(document.getElementById("webhook-editor-data").textContent);
const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
const template = document.getElementById("id_template");
const kind = document.getElementById("id_verification_kind");
const secret = document.getElementById("id_secret");
const header = document.getElementById("id_header");
const source = document.getElementById("preview-source");
const summary = document.getElementById("preview-summary");
const eventOut = document.getElementById("preview-event");
const renderedOut = document.getElementById("preview-rendered");
const hint = document.getElementById("preset-hint");

function randomSecret() {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function showVerificationFields() {
  for (const el of document.querySelectorAll("[data-verification]")) {
    const which = el.dataset.verification;
    el.hidden = kind.value === "none" || (which === "header" && kind.value !== "shared-secret-header");
  }
}

function choosePreset(key) {
  const preset = data.presets[key];
  if (!preset) return;
  template.value = preset.template;
  kind.value = preset.verification;
  header.value = preset.verification === "shared-secret-header" ? data.secretHeader : "";
  secret.value = preset.generate_secret ? randomSecret() : "";
  if (hint) hint.textContent = preset.hint;
  for (const button of document.querySelectorAll("[data-preset]")) {
    button.setAttribute("aria-pressed", String(button.dataset.preset === key));
  }
  const sample = source.querySelector(`option[value="sample:${key}"]`);
  if (sample && !source.querySelector("option[value^='request:']")) sample.selected = true;
  showVerificationFields();
  schedulePreview();
}

let timer = null;
let sequence = 0;

function schedulePreview() {
  clearTimeout(timer);
  timer = setTimeout(preview, 250);
}

async function preview() {
  const mine = ++sequence;
  const [type, value] = source.value.split(":");
  const body = { template: template.value, webhook: data.webhook, name: document.getElementById("id_name").value };
  if (type === "request") body.request = Number(value);
  else body.sample = value;
  let result;
  try {
    const response = await fetch(data.preview, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      credentials: "same-origin",
      body: JSON.stringify(body),
    });
    result = await response.json();
  } catch (e) {
    result = { error: `The preview could not be fetched: ${e.message}`, rendered: "", event: null };
  }
  if (mine !== sequence) return; // a later keystroke's answer is on its way
  summary.textContent = result.error ? result.error : `It makes a ${result.event.event} event on ${result.event.resource["prefect.resource.id"]}.`;
  summary.classList.toggle("form-error", Boolean(result.error));
  eventOut.textContent = result.event ? JSON.stringify(result.event, null, 2) : "";
  renderedOut.textContent = result.rendered || "";
}

for (const button of document.querySelectorAll("[data-preset]")) {
  button.addEventListener("click", () => choosePreset(button.dataset.preset));
}
kind.addEventListener("change", showVerificationFields);
template.addEventListener("input", schedulePreview);
source.addEventListener("change", schedulePreview);
const wanted = new URLSearchParams(location.search).get("request");
if (wanted) {
  const option = source.querySelector(`option[value="request:${CSS.escape(wanted)}"]`);
  if (option) option.selected = true;
}
showVerificationFields();
preview();
