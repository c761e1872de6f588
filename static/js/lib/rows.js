// The feed's list of rows: "Load older" and the count in the list's header.

import { $, $$, plural } from "./dom.js";
import { renderTimes } from "./times.js";

/** "64+ events": `more` when older rows exist beyond the ones shown. */
export function showCount(shown, more = Boolean($("[data-load-older]"))) {
  const count = $("[data-count]");
  if (!count) return;
  count.dataset.shown = String(shown);
  count.textContent = plural(shown, "event").replace(" ", more ? "+ " : " ");
}

export function setUpLoadOlder() {
  const link = $("[data-load-older]");
  const rows = $("#feed-rows");
  const count = $("[data-count]");
  if (!link || !rows) return;
  link.addEventListener("click", async (event) => {
    event.preventDefault();
    if (link.getAttribute("aria-busy") === "true") return;
    link.setAttribute("aria-busy", "true");
    link.textContent = "Loading…";
    const url = new URL(link.href);
    url.searchParams.set("partial", "rows");
    let html;
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) throw new Error(String(response.status));
      html = await response.text();
    } catch {
      location.assign(link.href); // the plain link still works
      return;
    }
    const template = document.createElement("template");
    template.innerHTML = html;
    $$(".more-marker", rows).forEach((marker) => marker.remove());
    let added = 0;
    for (const row of $$(".row", template.content)) {
      // A row the live push already inserted must not appear twice.
      if (rows.querySelector(`[data-id="${CSS.escape(row.dataset.id)}"]`)) continue;
      rows.append(row);
      added += 1;
    }
    renderTimes(rows);
    const marker = $(".more-marker", template.content);
    showCount(Number(count.dataset.shown) + added, Boolean(marker));
    if (marker) {
      const next = new URL(link.href);
      next.searchParams.set("before", marker.dataset.next);
      link.href = next.pathname + next.search;
      link.textContent = "Load older";
      link.removeAttribute("aria-busy");
    } else {
      link.closest(".more").remove();
    }
  });
}

