// Keys that work on every page: `/` focuses the page's search box.

import { $ } from "./dom.js";

export function typing(target = document.activeElement) {
  return Boolean(target?.closest?.("input, textarea, select, [contenteditable=true]"));
}

export function startKeys() {
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.metaKey || event.ctrlKey || event.altKey || typing(event.target)) return;
    if (event.key === "/") {
      const search = $("[data-search]");
      if (!search) return;
      event.preventDefault();
      search.focus();
    }
  });
}
