// The event page (times are lib/times.js's, started by page.js): copy buttons, the actions menu, and the payload as a JSON tree.
// Every string from the event goes into the page through textContent, never as HTML.

import { JsonNumber, parseExact, stringifyExact } from "./lib/json.js";

const STRING_FOLD = 240; // characters of a long string shown before "show more"
const LINE_FOLD = 6; // lines of a multi-line string shown before "show more"
const CHUNK = 100; // children of an object or array rendered per "show more"
const OPEN_DEPTH = 3; // containers this shallow start open if they are small...
const SMALL_SUBTREE = 60; // ...that is, hold fewer values than this
const FIRST_RENDER_BUDGET = 1500; // values rendered on load, whatever the payload's size
const EXPAND_ALL_BUDGET = 5000; // values "Expand all" may render before it stops

const page = document.querySelector(".ev");
const toast = document.querySelector(".ev-toast");
const source = document.getElementById("event-data")?.textContent;
// Parsed exactly: JSON.parse would round integers past 2^53.
const data = source ? parseExact(source) : null;

// -- copying ----------------------------------------------------------------------------------

async function writeClipboard(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain-HTTP deployments have no Clipboard API; the old way still works from a click.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error("copy refused");
}

let toastTimer;
function say(message) {
  if (!toast) return;
  toast.textContent = message;
  toast.classList.add("is-shown");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => toast.classList.remove("is-shown"), 1800);
}

async function copy(text, button, what = "Copied") {
  try {
    await writeClipboard(text);
    say(`${what} to the clipboard`);
    if (button) {
      button.dataset.state = "copied";
      setTimeout(() => delete button.dataset.state, 1500);
    }
  } catch {
    say("The browser refused to copy; select the text and copy it by hand");
  }
}

function pretty(value) {
  return stringifyExact(value, 2);
}

function copyTextFor(button) {
  if (button.dataset.copy !== undefined) return button.dataset.copy;
  if (button.dataset.copyJson === "payload") return pretty(data.payload);
  if (button.dataset.copyJson === "event") return pretty(data);
  if (button.hasAttribute("data-copy-prev")) return button.previousElementSibling?.textContent ?? "";
  return null;
}

document.addEventListener("click", (e) => {
  const button = e.target.closest("[data-copy], [data-copy-json], [data-copy-prev]");
  if (!button) return;
  const text = copyTextFor(button);
  if (text === null) return;
  const label = button.getAttribute("role") === "menuitem" ? button.textContent.replace(/^Copy /, "") : null;
  copy(text, button, label ? `${label[0].toUpperCase()}${label.slice(1)} copied` : "Copied");
  button.closest("details.ev-menu")?.removeAttribute("open");
});

// -- the actions menu ---------------------------------------------------------------------------

const menu = document.querySelector("details.ev-menu");
if (menu) {
  document.addEventListener("click", (e) => {
    if (menu.open && !menu.contains(e.target)) menu.open = false;
  });
  menu.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && menu.open) {
      menu.open = false;
      menu.querySelector("summary").focus();
    }
  });
  menu.addEventListener("toggle", () => {
    if (menu.open) menu.querySelector("[role=menuitem]")?.focus();
  });
  for (const item of menu.querySelectorAll("a[role=menuitem]")) {
    item.addEventListener("click", () => { menu.open = false; });
  }
}

// -- long label values fold ---------------------------------------------------------------------

function foldLongValues() {
  for (const value of document.querySelectorAll(".ev-val")) {
    if (value.scrollHeight <= value.clientHeight + 2) continue;
    value.classList.add("is-folded");
    const more = document.createElement("button");
    more.type = "button";
    more.className = "ev-more-btn";
    more.textContent = "Show more";
    more.addEventListener("click", () => {
      const open = value.classList.toggle("is-open");
      more.textContent = open ? "Show less" : "Show more";
    });
    value.after(more);
  }
}

// -- the payload tree ---------------------------------------------------------------------------

function kindOf(value) {
  if (value === null) return "null";
  if (value instanceof JsonNumber) return "number";
  if (Array.isArray(value)) return "array";
  return typeof value; // object, string, number, boolean
}

function isContainer(value) {
  return value !== null && typeof value === "object" && !(value instanceof JsonNumber);
}

// The number of values in a subtree, counting no further than `limit`.
function weigh(value, limit) {
  let count = 0;
  const stack = [value];
  while (stack.length && count < limit) {
    const v = stack.pop();
    count += 1;
    if (isContainer(v)) for (const child of Object.values(v)) stack.push(child);
  }
  return count;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function summaryOf(value) {
  const n = Array.isArray(value) ? value.length : Object.keys(value).length;
  if (Array.isArray(value)) return n === 1 ? "1 item" : `${n.toLocaleString()} items`;
  return n === 1 ? "1 key" : `${n.toLocaleString()} keys`;
}

function pathOf(parent, key, inArray) {
  if (inArray) return `${parent}[${key}]`;
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`;
}

function copyButton(value, path) {
  const button = el("button", "jt-copy", "Copy");
  button.type = "button";
  button.setAttribute("aria-label", `Copy ${path}`);
  button.addEventListener("click", () => copy(typeof value === "string" ? value : pretty(value), button));
  return button;
}

function stringValue(text) {
  const wrap = el("span", "jt-str");
  const body = el("span", "jt-str-text");
  body.dir = "auto";
  wrap.append(el("span", "jt-quote", "\""), body, el("span", "jt-quote", "\""));
  const lines = text.split("\n");
  const long = text.length > STRING_FOLD || lines.length > LINE_FOLD;
  if (!long) {
    body.textContent = text;
    return wrap;
  }
  const short = lines.length > LINE_FOLD ? lines.slice(0, LINE_FOLD).join("\n").slice(0, STRING_FOLD) : text.slice(0, STRING_FOLD);
  body.textContent = `${short}…`;
  const toggle = el("button", "jt-more", `show more (${text.length.toLocaleString()} characters)`);
  toggle.type = "button";
  toggle.addEventListener("click", () => {
    const open = toggle.dataset.open === "true";
    body.textContent = open ? `${short}…` : text;
    toggle.dataset.open = String(!open);
    toggle.textContent = open ? `show more (${text.length.toLocaleString()} characters)` : "show less";
  });
  wrap.append(toggle);
  return wrap;
}

function scalarValue(value) {
  const kind = kindOf(value);
  if (kind === "string") return stringValue(value);
  return el("span", `jt-${kind}`, String(value));
}

class Tree {
  constructor(root, value) {
    this.root = root;
    this.budget = FIRST_RENDER_BUDGET;
    root.replaceChildren();
    const list = el("ul", "jt");
    list.setAttribute("role", "tree");
    list.setAttribute("aria-label", "Payload");
    this.fillChildren(list, value, "payload", 0);
    root.append(list);
  }

  // Children of a container, CHUNK at a time, with a button for the rest.
  fillChildren(list, value, path, depth, start = 0) {
    const inArray = Array.isArray(value);
    const keys = inArray ? null : Object.keys(value);
    const length = inArray ? value.length : keys.length;
    const end = Math.min(length, start + CHUNK);
    for (let i = start; i < end; i += 1) {
      const key = inArray ? i : keys[i];
      list.append(this.node(String(key), value[key], pathOf(path, String(key), inArray), depth + 1, inArray));
    }
    if (end < length) {
      const li = el("li", "jt-rest");
      const more = el("button", "jt-more", `show ${Math.min(CHUNK, length - end).toLocaleString()} more of ${(length - end).toLocaleString()} remaining`);
      more.type = "button";
      more.addEventListener("click", () => {
        li.remove();
        this.budget = Infinity;
        this.fillChildren(list, value, path, depth, end);
      });
      li.append(more);
      list.append(li);
    }
  }

  node(key, value, path, depth, inArray) {
    this.budget -= 1;
    const li = el("li", "jt-node");
    li.setAttribute("role", "treeitem");
    const line = el("div", "jt-line");
    const keyEl = el("span", inArray ? "jt-key jt-index" : "jt-key", key);
    keyEl.dir = "auto";
    keyEl.title = path;
    if (!isContainer(value)) {
      line.append(el("span", "jt-spacer"), keyEl, el("span", "jt-colon", ":"), scalarValue(value), copyButton(value, path));
      li.append(line);
      return li;
    }
    const empty = Array.isArray(value) ? value.length === 0 : Object.keys(value).length === 0;
    const summary = el("span", "jt-summary", empty ? (Array.isArray(value) ? "[ ]" : "{ }") : `${Array.isArray(value) ? "[" : "{"} ${summaryOf(value)} ${Array.isArray(value) ? "]" : "}"}`);
    if (empty) {
      line.append(el("span", "jt-spacer"), keyEl, el("span", "jt-colon", ":"), summary, copyButton(value, path));
      li.append(line);
      return li;
    }
    const toggle = el("button", "jt-toggle");
    toggle.type = "button";
    toggle.setAttribute("aria-label", `Expand ${path}`);
    line.append(toggle, keyEl, el("span", "jt-colon", ":"), summary, copyButton(value, path));
    li.append(line);
    li.jt = { value, path, depth, built: false, toggle };
    const open = depth <= OPEN_DEPTH && this.budget > 0 && weigh(value, SMALL_SUBTREE) < SMALL_SUBTREE;
    this.setOpen(li, open);
    toggle.addEventListener("click", () => this.setOpen(li, li.getAttribute("aria-expanded") !== "true"));
    keyEl.addEventListener("click", () => this.setOpen(li, li.getAttribute("aria-expanded") !== "true"));
    return li;
  }

  // Children are built the first time a node opens, so a closed megabyte costs nothing.
  setOpen(li, open) {
    const state = li.jt;
    if (open && !state.built) {
      const list = el("ul", "jt");
      list.setAttribute("role", "group");
      this.fillChildren(list, state.value, state.path, state.depth);
      li.append(list);
      state.built = true;
    }
    li.setAttribute("aria-expanded", String(open));
    state.toggle.setAttribute("aria-label", `${open ? "Collapse" : "Expand"} ${state.path}`);
  }

  expandAll() {
    let budget = EXPAND_ALL_BUDGET;
    const queue = [...this.root.querySelectorAll(":scope > .jt > .jt-node")];
    while (queue.length) {
      const li = queue.shift();
      if (li.jt) {
        if (budget <= 0) return false;
        budget -= Math.min(li.jt.value && Object.keys(li.jt.value).length, CHUNK);
        this.setOpen(li, true);
      }
      queue.push(...li.querySelectorAll(":scope > .jt > .jt-node"));
    }
    return true;
  }

  collapseAll() {
    for (const li of this.root.querySelectorAll(".jt-node[aria-expanded=true]")) this.setOpen(li, false);
  }
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function buildPayload() {
  const root = document.getElementById("payload-tree");
  if (!root || !data) return;
  const payload = data.payload;
  const size = document.getElementById("payload-size");
  if (size) size.textContent = `${summaryOf(payload)} · ${formatBytes(new Blob([stringifyExact(payload, 0)]).size)}`;
  const tree = new Tree(root, payload);
  page.querySelector("[data-tree=expand]")?.addEventListener("click", () => {
    if (!tree.expandAll()) say(`Opened the first ${EXPAND_ALL_BUDGET.toLocaleString()} values; open the rest one by one`);
  });
  page.querySelector("[data-tree=collapse]")?.addEventListener("click", () => tree.collapseAll());
}

// -- the raw event ------------------------------------------------------------------------------

const raw = document.getElementById("raw-json");
raw?.addEventListener("toggle", () => {
  const code = document.getElementById("raw-json-code");
  // Filled on first open: a megabyte of text costs layout time only when someone reads it.
  if (raw.open && !code.textContent) code.textContent = pretty(data);
});

foldLongValues();
buildPayload();
