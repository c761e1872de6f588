// The live feed. One socket per page. It subscribes with the page's filter (again after every in-place filter
// change), inserts pushed rows in (occurred, id) order, a frame's budget at a time, and holds
// them (a sticky "N new — show" notice) while the reader points at, focuses or selects in the
// list, has scrolled it, or reads an older page, and after every (re)subscription fetches what arrived since the
// newest arrival it saw, so a reconnect leaves no gap and no duplicate.

import { $, $$, appPath, socketUrl } from "./dom.js";
import { MINUTE, renderTimes } from "./times.js";
import { filterQuery, navigate } from "./navigation.js";
import { setUpLoadOlder, showCount } from "./rows.js";
import { histogram } from "./histogram.js";

const MAX_ROWS = 500;          // rows kept in the DOM; older ones are trimmed (load older brings them back)
const CATCH_UP_MARGIN = MINUTE; // a catch-up starts this long before the newest arrival seen (commits in flight)
const CATCH_UP_PAGES = 10;
const FRAME_BUDGET_MS = 8;      // DOM work per animation frame: a flood never freezes the page
const FLOOD_ROWS = 25;          // more than this waiting is a flood...
const FLOOD_GAP_MS = 250;       // ...inserted in batches this far apart, without highlights

/** A comparable key for a row: UTC time to the microsecond, then the id, as the server orders. */
function rowKey(occurred, id) {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?/.exec(occurred) || ["", occurred, ""];
  return `${m[1]}.${(m[2] || "").padEnd(6, "0").slice(0, 6)}~${id}`;
}

function keyOf(row) {
  // Cached on the element: a flood compares every new row with the rows shown.
  return (row.eventfeedKey ||= rowKey(row.dataset.occurred, row.dataset.id));
}

export const live = {
  socket: null,
  attempts: 0,
  manualPause: false,
  held: new Map(),   // rows received while paused, by id
  queue: new Map(),  // rows waiting for a frame to be inserted, by id
  overflowed: false,
  subscribedOnce: false,
  hover: false,
  focus: false,
  selecting: false,
  flushing: false,

  start() {
    this.bind();
    this.connect();
    document.addEventListener("selectionchange", () => {
      const selection = getSelection();
      const inList = Boolean(selection && !selection.isCollapsed && this.rows?.contains(selection.anchorNode));
      if (inList !== this.selecting) this.setHold("selecting", inList);
    });
  },

  /** Pointing at, focusing or selecting in the list holds insertions; ending it lets them in. */
  setHold(reason, on) {
    this[reason] = on;
    if (!this.paused && this.held.size) this.release();
    this.render();
  },

  /** (Re)attach to the controls of the current page content. */
  bind() {
    this.rows = $("#feed-rows");
    this.status = $("[data-live-status]");
    this.toggle = $("[data-live-toggle]");
    this.banner = $("[data-new-events]");
    this.held.clear();
    this.queue.clear();
    this.overflowed = false;
    this.hover = this.focus = this.selecting = false;
    // The whole list card holds, the notice included: reaching for it must not let the rows in.
    const card = this.rows?.closest(".list");
    // Scrolled once the list's header is under the top bar: a new row would push what is read.
    // An observer, not a measurement per event: measuring forces a layout of every row.
    this.scrolled = false;
    this.observer?.disconnect();
    const head = card && $(".list-head", card);
    if (head) {
      this.observer = new IntersectionObserver(([entry]) => {
        this.scrolled = !entry.isIntersecting && entry.boundingClientRect.top < 60;
        this.onScroll();
      }, { rootMargin: "-60px 0px 0px 0px" });
      this.observer.observe(head);
    }
    if (card) {
      card.addEventListener("pointerenter", (event) => event.pointerType === "mouse" && this.setHold("hover", true));
      card.addEventListener("pointerleave", () => this.setHold("hover", false));
      card.addEventListener("focusin", () => this.setHold("focus", true));
      card.addEventListener("focusout", (event) => {
        if (!card.contains(event.relatedTarget)) this.setHold("focus", false);
      });
    }
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
      this.hover = this.focus = this.selecting = false;
      this.rows?.scrollIntoView({ block: "start" });
      scrollBy({ top: -80 }); // below the sticky top bar
      this.release(true);
    });
    this.render();
  },

  /** Why insertions wait, or "" when they do not. */
  get holdReason() {
    if (this.manualPause) return "paused";
    if (new URL(location.href).searchParams.has("before")) return "older page";
    if (this.hover || this.focus || this.selecting) return "held";
    // The list's top has scrolled under the top bar: a new row would push what is read.
    if (this.scrolled) return "scrolled";
    return "";
  },

  get paused() {
    return Boolean(this.holdReason);
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
      for (const row of message.rows) this.noteArrival(row.received);
      this.receive(this.parse(message.rows.map((row) => row.html).join("")));
    } else if (message.type === "error") {
      this.setState("error");
    }
  },

  /** The rows of one message, parsed in one go. */
  parse(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    return $$(".row", template.content);
  },

  known(id) {
    return this.held.has(id) || this.queue.has(id) || Boolean(this.rows.querySelector(`[data-id="${CSS.escape(id)}"]`));
  },

  receive(rows) {
    if (!rows.length || !this.rows) return;
    const paused = this.paused;
    // Rows older than the last one shown belong to the pages "load older" brings (as in
    // insert()): a catch-up by arrival also returns rows stored just before the page was drawn.
    const shown = $$(".row", this.rows);
    const floor = $("[data-load-older]") && shown.length ? keyOf(shown[shown.length - 1]) : "";
    for (const row of rows) {
      const id = row.dataset.id;
      if (this.known(id) || keyOf(row) < floor) continue;
      histogram.add(new Date(row.dataset.occurred), $(".name", row)?.dataset.tone);
      (paused ? this.held : this.queue).set(id, row);
    }
    if (this.held.size > MAX_ROWS) {
      // Too much to hold: the notice then reloads the first page instead.
      this.overflowed = true;
      this.held = new Map([...this.held].slice(-MAX_ROWS));
    }
    if (this.queue.size > MAX_ROWS) this.queue = new Map([...this.queue].slice(-MAX_ROWS));
    if (paused) this.render();
    else this.schedule();
  },

  release(force = false) {
    if (!force && this.paused) return;
    if (this.overflowed) {
      navigate(location.pathname + "?" + filterQuery(), { push: false });
      return;
    }
    for (const [id, row] of this.held) this.queue.set(id, row);
    this.held.clear();
    // "Show" brings the rows in now, hold or not, and then focuses the newest one.
    this.forced ||= force;
    this.schedule();
    this.render();
  },

  schedule() {
    if (this.flushing || !this.queue.size) return;
    this.flushing = true;
    // In a flood, a few larger insertions a second, not one per frame: each costs a layout of
    // the list, and a reader cannot follow sixty a second anyway.
    const wait = this.queue.size > FLOOD_ROWS || this.flooding ? FLOOD_GAP_MS : 0;
    setTimeout(() => requestAnimationFrame(() => this.flush()), wait);
  },

  /** Insert queued rows until the frame's budget is spent; the rest wait for the next frame. */
  flush() {
    this.flushing = false;
    if (this.paused && !this.forced) {
      // A hold began since these arrived: they wait behind the notice instead.
      for (const [id, row] of this.queue) this.held.set(id, row);
      this.queue.clear();
      this.render();
      return;
    }
    const started = performance.now();
    this.flooding = this.queue.size > FLOOD_ROWS;
    const rows = [...this.queue.values()].sort((a, b) => (keyOf(a) < keyOf(b) ? 1 : -1));
    const batch = [];
    for (const row of rows) {
      batch.push(row);
      this.queue.delete(row.dataset.id);
      if (batch.length % 25 === 0) {
        this.insert(batch.splice(0));
        if (performance.now() - started > FRAME_BUDGET_MS) break;
      }
    }
    this.insert(batch);
    if (this.queue.size) {
      this.schedule();
    } else if (this.forced) {
      this.forced = false;
      // Focus goes to the newest row, not to <body>, as the notice disappears.
      $(".row .name", this.rows)?.focus({ preventScroll: true });
    }
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
      if (rows.length <= FLOOD_ROWS) row.classList.add("is-new");
      fresh.push(row);
    }
    if (!fresh.length) return;
    for (const row of fresh) renderTimes(row);
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

  /** The newest arrival (server `received` time) this list has seen: where a catch-up starts. */
  noteArrival(received) {
    if (!received || !this.rows) return;
    const known = Date.parse(this.rows.dataset.arrived || this.rows.dataset.rendered || "");
    if (!(Date.parse(received) <= known)) this.rows.dataset.arrived = received;
  },

  /** Everything that arrived since the newest arrival seen (less a margin for commits in
   *  flight), page by page. By arrival, not by `occurred`: an event claiming a time far ahead
   *  would otherwise hide everything that arrived meanwhile. */
  async catchUp() {
    const seen = this.rows?.dataset.arrived || this.rows?.dataset.rendered || new Date().toISOString();
    let cursor = `${new Date(Date.parse(seen) - CATCH_UP_MARGIN).toISOString()}~00000000-0000-0000-0000-000000000000`;
    const query = filterQuery();
    for (let page = 0; page < CATCH_UP_PAGES && cursor; page += 1) {
      const url = `${location.pathname}?${query}${query ? "&" : ""}partial=rows&arrived=${encodeURIComponent(cursor)}`;
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
      const marker = $(".more-marker[data-arrived]", template.content);
      if (marker) this.noteArrival(marker.dataset.arrived.split("~")[0]);
      cursor = marker?.hasAttribute("data-more") ? marker.dataset.arrived : null;
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
      const paused = this.state === "live" && ["paused", "older page"].includes(this.holdReason);
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
      this.banner.textContent = this.overflowed ? `${MAX_ROWS}+ new — show` : `${n} new — show`;
    }
  },
};

