// Keys that work on every page, and the feed's: `/` search, `?` this help, j/k the next and
// previous event, Enter opens it, ←/→ move between the links of a row (only a row's name is a
// Tab stop, the template says so, so Tab walks event by event). Focus always returns where it came from.

import { $, $$ } from "./dom.js";

const HELP = [
  ["j / k", "Next / previous event"],
  ["Enter", "Open the focused event"],
  ["← / →", "Move between a row's links (resource, related)"],
  ["/", "Search"],
  ["?", "Show these keys"],
  ["Esc", "Close a menu or this sheet"],
  ["← → Home End, Enter", "In the histogram: pick a bar, zoom into it"],
];

export function typing(target = document.activeElement) {
  return Boolean(target?.closest?.("input, textarea, select, [contenteditable=true]"));
}

let sheet = null;

function helpSheet() {
  if (sheet) return sheet;
  sheet = document.createElement("dialog");
  sheet.className = "help-sheet";
  sheet.setAttribute("aria-labelledby", "help-sheet-title");
  const title = document.createElement("h2");
  title.id = "help-sheet-title";
  title.textContent = "Keyboard shortcuts";
  const list = document.createElement("dl");
  for (const [key, what] of HELP) {
    const dt = document.createElement("dt");
    for (const part of key.split(" ")) {
      if (["/", ",", "Enter", "Esc", "?", "j", "k", "←", "→", "Home", "End"].includes(part.replace(",", ""))) {
        const kbd = document.createElement("kbd");
        kbd.textContent = part.replace(",", "");
        dt.append(kbd, part.endsWith(",") ? ", " : " ");
      } else dt.append(`${part} `);
    }
    const dd = document.createElement("dd");
    dd.textContent = what;
    list.append(dt, dd);
  }
  const close = document.createElement("button");
  close.type = "button";
  close.textContent = "Close";
  close.addEventListener("click", () => sheet.close());
  sheet.append(title, list, close);
  document.body.append(sheet);
  return sheet;
}

function openHelp() {
  const back = document.activeElement;
  const dialog = helpSheet();
  // "close" fires a task after Escape: a key pressed in between (`/`) may already have moved
  // focus, and pulling it back would undo that. Only focus left nowhere is returned.
  dialog.addEventListener("close", () => {
    const now = document.activeElement;
    if (!now || now === document.body || dialog.contains(now)) back?.focus?.();
  }, { once: true });
  dialog.showModal();
}

function rowLinks(row) {
  return $$("a[href]", row);
}

function focusRow(step) {
  const rows = $$("#feed-rows .row");
  if (!rows.length) return false;
  const current = document.activeElement?.closest?.("#feed-rows .row");
  let index = current ? rows.indexOf(current) + step : step > 0 ? 0 : rows.length - 1;
  index = Math.max(0, Math.min(rows.length - 1, index));
  const target = $(".name", rows[index]);
  target?.focus();
  target?.scrollIntoView({ block: "nearest" });
  return true;
}

export function startKeys() {
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.metaKey || event.ctrlKey || event.altKey || typing(event.target)) return;
    if (document.querySelector("dialog[open]") && event.key !== "Escape") return;
    const row = event.target.closest?.("#feed-rows .row");
    if (event.key === "/") {
      const search = $("[data-search]");
      if (!search) return;
      event.preventDefault();
      search.focus();
    } else if (event.key === "?") {
      event.preventDefault();
      openHelp();
    } else if ((event.key === "j" || event.key === "k") && $("#feed-rows")) {
      if (focusRow(event.key === "j" ? 1 : -1)) event.preventDefault();
    } else if (row && (event.key === "ArrowRight" || event.key === "ArrowLeft")) {
      const links = rowLinks(row);
      const i = links.indexOf(event.target);
      const next = links[i + (event.key === "ArrowRight" ? 1 : -1)];
      if (next) {
        event.preventDefault();
        next.focus();
      }
    }
  });
}
