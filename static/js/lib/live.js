// The live feed. One socket per page. It subscribes with the page's filter (again after every in-place filter
// change), inserts pushed rows in (occurred, id) order, pauses when the reader scrolls down or
// reads an older page, and after every (re)subscription fetches what it may have missed since
// its newest row, so a reconnect leaves no gap and no duplicate.

import { $, $$, appPath, socketUrl } from "./dom.js";
import { MINUTE, renderTimes } from "./times.js";
import { filterQuery, navigate } from "./navigation.js";
import { setUpLoadOlder, showCount } from "./rows.js";

const MAX_ROWS = 500;          // rows kept in the DOM; older ones are trimmed (load older brings them back)
const CATCH_UP_MARGIN = MINUTE; // late events (occurred before the newest row) within this margin are caught up
const CATCH_UP_PAGES = 10;
const SCROLL_PAUSE_PX = 240;

/** A comparable key for a row: UTC time to the microsecond, then the id, as the server orders. */
function rowKey(occurred, id) {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?/.exec(occurred) || ["", occurred, ""];
  return `${m[1]}.${(m[2] || "").padEnd(6, "0").slice(0, 6)}~${id}`;
}

function keyOf(row) {
  return rowKey(row.dataset.occurred, row.dataset.id);
}

export const live = {
  socket: null,
  attempts: 0,
  manualPause: false,
  held: new Map(),   // rows received while paused, by id
  overflowed: false,
  subscribedOnce: false,

  start() {
    this.bind();
    this.connect();
    addEventListener("scroll", () => this.onScroll(), { passive: true });
  },

  /** (Re)attach to the controls of the current page content. */
  bind() {
    this.rows = $("#feed-rows");
    this.status = $("[data-live-status]");
    this.toggle = $("[data-live-toggle]");
    this.banner = $("[data-new-events]");
    this.held.clear();
    this.overflowed = false;
    this.toggle?.addEventListener("click", () => {
      this.manualPause = !this.manualPause;
      if (!this.manualPause) this.release();
      this.render();
    });
    this.banner?.addEventListener("click", () => {
      this.manualPause = false;
      if (new URL(location.href).searchParams.has("before")) {
        navigate(`${location.pathname}?${filterQuery()}`); // an older page: go to the newest one
        return;
      }
      scrollTo({ top: 0 });
      this.release();
    });
    this.render();
  },

  get paused() {
    return this.manualPause || scrollY > SCROLL_PAUSE_PX || new URL(location.href).searchParams.has("before");
  },

  connect() {
    const socket = new WebSocket(socketUrl(appPath("liveFeed")));
    this.socket = socket;
    this.setState("connecting");
    socket.addEventListener("open", () => this.subscribe());
    socket.addEventListener("message", (event) => this.onMessage(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      if (event.code === 4401) {
        this.setState("signed-out");
        return;
      }
      this.setState("reconnecting");
      // Exponential backoff with jitter, at most 30 s apart.
      const delay = Math.min(30_000, 1000 * 2 ** this.attempts) * (0.75 + Math.random() / 2);
      this.attempts += 1;
      setTimeout(() => this.connect(), delay);
    });
  },

  /** Tests drop the connection with this, as a network failure would. */
  drop() {
    this.socket?.close();
  },

  subscribe() {
    if (this.socket?.readyState === WebSocket.OPEN) {
      // Until the server confirms, frames in flight still answer the previous filter; the
      // catch-up after the confirmation fills the gap.
      this.awaitingSubscription = true;
      this.socket.send(JSON.stringify({ type: "subscribe", query: filterQuery() }));
    }
  },

  onMessage(message) {
    if (message.type === "subscribed") {
      this.awaitingSubscription = false;
      this.attempts = 0;
      this.setState("live");
      this.catchUp();
    } else if (message.type === "rows" && !this.awaitingSubscription) {
      this.receive(message.rows.map((row) => this.parse(row.html)).filter(Boolean));
    } else if (message.type === "error") {
      this.setState("error");
    }
  },

  parse(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    return template.content.querySelector(".row");
  },

  receive(rows) {
    if (!rows.length || !this.rows) return;
    if (this.paused) {
      for (const row of rows) if (!this.rows.querySelector(`[data-id="${CSS.escape(row.dataset.id)}"]`)) this.held.set(row.dataset.id, row);
      if (this.held.size > MAX_ROWS) {
        // Too much to hold: the banner then reloads the first page instead.
        this.overflowed = true;
        this.held = new Map([...this.held].slice(-MAX_ROWS));
      }
      this.render();
      return;
    }
    this.insert(rows);
  },

  release() {
    if (this.overflowed) {
      navigate(location.pathname + "?" + filterQuery(), { push: false });
      return;
    }
    const rows = [...this.held.values()];
    this.held.clear();
    this.insert(rows);
    this.render();
  },

  /** Insert rows in order (late events land where they belong), newest first, no repeats. */
  insert(rows) {
    const list = this.rows;
    rows.sort((a, b) => (keyOf(a) < keyOf(b) ? 1 : -1));
    const existing = $$(".row", list);
    // Rows older than the last one shown belong to the pages "load older" brings.
    const floor = $("[data-load-older]") && existing.length ? keyOf(existing[existing.length - 1]) : "";
    let index = 0;
    const fresh = [];
    for (const row of rows) {
      if (list.querySelector(`[data-id="${CSS.escape(row.dataset.id)}"]`)) continue;
      const key = keyOf(row);
      if (key < floor) continue;
      while (index < existing.length && keyOf(existing[index]) > key) index += 1;
      list.insertBefore(row, existing[index] || list.querySelector(".more-marker"));
      row.classList.add("is-new");
      fresh.push(row);
    }
    if (!fresh.length) return;
    renderTimes(list);
    setTimeout(() => fresh.forEach((row) => row.classList.remove("is-new")), 2500);
    this.trim();
    showCount($$(".row", list).length);
    $(".empty-state")?.remove();
  },

  /** Keep the DOM bounded under a flood; "load older" continues from the last row kept. */
  trim() {
    const rows = $$(".row", this.rows);
    if (rows.length <= MAX_ROWS) return;
    for (const row of rows.slice(MAX_ROWS)) row.remove();
    const last = rows[MAX_ROWS - 1];
    const url = new URL(location.href);
    url.searchParams.set("before", `${last.dataset.occurred}~${last.dataset.id}`);
    let link = $("[data-load-older]");
    if (!link) {
      const more = document.createElement("div");
      more.className = "more";
      more.innerHTML = '<a class="button load-older" data-load-older>Load older</a>';
      this.rows.after(more);
      link = $("[data-load-older]");
      setUpLoadOlder();
    }
    link.href = url.pathname + url.search;
  },

  /** Everything after the newest row shown (less a margin for late events), page by page. */
  async catchUp() {
    const newest = $(".row", this.rows || document);
    const base = newest ? Date.parse(newest.dataset.occurred) : Date.parse(this.rows?.dataset.rendered || new Date().toISOString());
    let cursor = `${new Date(base - CATCH_UP_MARGIN).toISOString()}~00000000-0000-0000-0000-000000000000`;
    const query = filterQuery();
    for (let page = 0; page < CATCH_UP_PAGES && cursor; page += 1) {
      const url = `${location.pathname}?${query}${query ? "&" : ""}partial=rows&after=${encodeURIComponent(cursor)}`;
      let html;
      try {
        const response = await fetch(url, { credentials: "same-origin" });
        if (!response.ok) return;
        html = await response.text();
      } catch {
        return; // the socket's close handler reconnects and catches up again
      }
      // The filter changed while this was loading: these rows answer the old one.
      if (filterQuery() !== query) return;
      const template = document.createElement("template");
      template.innerHTML = html;
      this.receive($$(".row", template.content));
      cursor = $(".more-marker[data-after]", template.content)?.dataset.after;
    }
  },

  onScroll() {
    if (!this.paused && this.held.size) this.release();
    this.render();
  },

  setState(state) {
    this.state = state;
    this.render();
  },

  render() {
    if (this.status) {
      const labels = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", "signed-out": "Signed out", error: "Filter error" };
      const paused = this.state === "live" && this.paused;
      this.status.dataset.state = paused ? "paused" : this.state;
      this.status.textContent = paused ? "Paused" : labels[this.state] || this.state;
    }
    if (this.toggle) {
      this.toggle.setAttribute("aria-pressed", String(!this.manualPause));
      this.toggle.textContent = this.manualPause ? "Resume" : "Pause";
    }
    if (this.banner) {
      const n = this.held.size;
      this.banner.hidden = n === 0;
      this.banner.textContent = this.overflowed ? `${MAX_ROWS}+ new events — show them` : `${n} new event${n === 1 ? "" : "s"} — show`;
    }
  },
};

