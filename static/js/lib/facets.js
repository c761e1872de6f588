// The facets beside the feed: a server-rendered partial fetched after the first paint (the feed
// must not wait for its counts). Its include/exclude links are plain feed links, so the in-place
// navigation swaps the page and this loads again for the new filter. On a phone it starts closed.

import { $ } from "./dom.js";

const PHONE = "(max-width: 760px)";

export const facets = {
  async load() {
    const box = $("#facets");
    if (!box) return;
    let html;
    try {
      const response = await fetch(box.dataset.src, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!response.ok) throw new Error(String(response.status));
      html = await response.text();
    } catch {
      box.innerHTML = '<p class="facets-note small">The facets could not be loaded.</p>';
      return;
    }
    // The page may have moved on to another filter while this one was counted.
    if (!box.isConnected) return;
    box.innerHTML = html;
    const details = $("[data-facets-box]", box);
    if (details && matchMedia(PHONE).matches) details.open = false;
    box.dataset.loaded = "true";
  },
};
