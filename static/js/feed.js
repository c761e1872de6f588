// The feed page: times in the reader's zone, the filter pickers, the histogram, "Load older".
// Every control ends in a plain GET navigation, so the URL is the whole state: back/forward
// work and a pasted link shows the same feed.

const TZ_KEY = "eventfeed.tz";
const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
const MINUTE = 60_000, HOUR = 3_600_000, DAY = 86_400_000;
const PAGING = ["before", "after", "partial"];

// -- time zone -------------------------------------------------------------------------------

export function zone() {
  try {
    return localStorage.getItem(TZ_KEY) === "utc" ? "utc" : "local";
  } catch {
    return "local"; // storage disabled: local time, not remembered
  }
}

function setZone(value) {
  try {
    localStorage.setItem(TZ_KEY, value);
  } catch {
    /* the switch still works for this page */
  }
  renderZone();
}

function parts(date) {
  const options = {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
    hourCycle: "h23", timeZone: zone() === "utc" ? "UTC" : undefined,
  };
  const out = {};
  for (const p of new Intl.DateTimeFormat("en-US", options).formatToParts(date)) out[p.type] = p.value;
  out.monthName = new Intl.DateTimeFormat("en-US", { month: "short", timeZone: options.timeZone }).format(date);
  return out;
}

function zoneName(date) {
  if (zone() === "utc") return "UTC";
  const minutes = -date.getTimezoneOffset();
  const sign = minutes < 0 ? "−" : "+";
  const hh = Math.floor(Math.abs(minutes) / 60), mm = Math.abs(minutes) % 60;
  const offset = minutes === 0 ? "UTC" : `UTC${sign}${hh}${mm ? ":" + String(mm).padStart(2, "0") : ""}`;
  const name = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return name && name !== "UTC" ? `${offset}, ${name}` : offset;
}

/** 2026-11-21 14:03:22 in the chosen zone. */
export function absolute(date) {
  const p = parts(date);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

function dayKey(date) {
  const p = parts(date);
  return `${p.year}-${p.month}-${p.day}`;
}

/** "12 s ago", as the server's `ago` filter writes it. */
export function ago(date, now = Date.now()) {
  const s = Math.floor((now - date.getTime()) / 1000);
  if (s < 0) return "just now";
  if (s >= 86400) return `${Math.floor(s / 86400)} d ago`;
  if (s >= 3600) return `${Math.floor(s / 3600)} h ago`;
  if (s >= 60) return `${Math.floor(s / 60)} min ago`;
  return `${s} s ago`;
}

/** Fill every row time and every `time[data-abs]` under `root` for the chosen zone. The live
 *  push calls this on the rows it inserts. */
export function renderTimes(root = document) {
  const today = dayKey(new Date());
  for (const el of $$(".when[datetime]", root)) {
    const date = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(date.getTime())) continue;
    const p = parts(date);
    $(".rel", el).textContent = ago(date);
    $(".abs", el).textContent = dayKey(date) === today ? `${p.hour}:${p.minute}:${p.second}` : `${p.monthName} ${Number(p.day)}, ${p.hour}:${p.minute}`;
    el.title = `${absolute(date)} ${zoneName(date)}`;
  }
  for (const el of $$("time[data-abs]", root)) {
    const date = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(date.getTime())) continue;
    el.textContent = `${absolute(date)}${zone() === "utc" ? " UTC" : ""}`;
    el.title = `${absolute(date)} ${zoneName(date)}`;
  }
}

function tickRelativeTimes() {
  const now = Date.now();
  for (const el of $$(".when[datetime] .rel")) {
    el.textContent = ago(new Date(el.parentElement.getAttribute("datetime")), now);
  }
}

function renderZone() {
  for (const button of $$("[data-tz]")) button.setAttribute("aria-pressed", String(button.dataset.tz === zone()));
  const note = $("[data-tz-note]");
  if (note) note.textContent = zone() === "utc" ? "in UTC" : `in your local time (${zoneName(new Date())})`;
  renderTimes();
  fillRangeInputs();
  histogram.draw();
}

// -- URLs ---------------------------------------------------------------------------------------

/** The current feed URL with paging removed and `changes` applied (null deletes a key). */
function feedUrl(changes) {
  const url = new URL(location.href);
  for (const key of PAGING) url.searchParams.delete(key);
  for (const [key, value] of Object.entries(changes)) {
    url.searchParams.delete(key);
    if (value !== null) url.searchParams.set(key, value);
  }
  return url.pathname + url.search;
}

function isoZ(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

// -- absolute range -----------------------------------------------------------------------------

function toInputValue(date) {
  const shifted = zone() === "utc" ? date : new Date(date.getTime() - date.getTimezoneOffset() * MINUTE);
  return shifted.toISOString().slice(0, 19);
}

function fromInputValue(value) {
  // A datetime-local value has no zone: it means the zone the switch shows.
  const date = new Date(zone() === "utc" ? `${value}Z` : value);
  return Number.isNaN(date.getTime()) ? null : date;
}

const PRESET_MS = { "15m": 15 * MINUTE, "1h": HOUR, "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY };

function fillRangeInputs() {
  const form = $("#range-form");
  if (!form) return;
  const params = new URL(location.href).searchParams;
  const now = new Date();
  const preset = PRESET_MS[params.get("range")] || DAY;
  for (const input of $$("[data-iso]", form)) {
    const iso = params.get(input.dataset.iso);
    let date = iso ? new Date(iso) : null;
    if (!params.get("since") && !params.get("until")) date = input.dataset.iso === "since" ? new Date(now - preset) : now;
    input.value = date && !Number.isNaN(date.getTime()) ? toInputValue(date) : "";
  }
}

function setUpRangeForm() {
  const form = $("#range-form");
  const toggle = $("[data-toggle='range-form']");
  if (!form || !toggle) return;
  toggle.setAttribute("aria-expanded", String(!form.hidden));
  toggle.addEventListener("click", () => {
    form.hidden = !form.hidden;
    toggle.setAttribute("aria-expanded", String(!form.hidden));
    if (!form.hidden) $("[data-iso]", form).focus();
  });
  form.addEventListener("submit", (event) => {
    for (const input of $$("[data-iso]", form)) {
      const hidden = form.elements[input.dataset.iso];
      const date = input.value ? fromInputValue(input.value) : null;
      hidden.value = date ? isoZ(date) : "";
      hidden.disabled = !date;
    }
    if (form.elements.since.disabled && form.elements.until.disabled) {
      event.preventDefault();
      $("[data-iso]", form).focus();
    }
  });
  fillRangeInputs();
}

// -- filter bar -----------------------------------------------------------------------------------

function setUpFilterBar() {
  const form = $("#feed-filters");
  if (!form) return;
  const resourceInput = $("[data-resource-input]", form);
  const roleInput = $("[data-role-input]", form);

  for (const radio of $$("input[name='_scope']", form)) {
    radio.addEventListener("change", () => {
      resourceInput.name = radio.value;
      roleInput.hidden = radio.value !== "related";
      resourceInput.placeholder = radio.value === "related" ? "prefect.flow.* or key=value" : "prefect.flow-run.*";
    });
  }

  form.addEventListener("submit", () => {
    if (resourceInput.name === "related" && roleInput.value.trim()) {
      resourceInput.value = `${roleInput.value.trim()}:${resourceInput.value.trim()}`;
    }
    // Empty inputs would put `event=&any=` in the URL; `_scope` only steers the picker.
    for (const input of $$("input", form)) {
      if (input.name === "_scope" || !input.name || !input.value.trim()) input.disabled = true;
    }
  });

  // Resources and roles seen on this page, as suggestions; any id can still be typed.
  const ids = new Set($$("[data-resource]").map((el) => el.dataset.resource).filter(Boolean));
  $("#known-resources").replaceChildren(...[...ids].sort().slice(0, 500).map((id) => new Option(id)));
  const roles = new Set($$(".related .group[data-role]").map((el) => el.dataset.role).filter(Boolean));
  $("#known-roles").replaceChildren(...[...roles].sort().map((role) => new Option(role)));

  for (const picker of $$(".picker", form)) {
    picker.addEventListener("toggle", () => {
      if (!picker.open) return;
      for (const other of $$(".picker[open]", form)) if (other !== picker) other.open = false;
      $("input:not([type=radio]):not([hidden])", picker)?.focus();
      if (picker.id === "event-picker") loadNames(picker);
    });
  }
}

// Page-wide keys and clicks, registered once: the filter bar itself is replaced on every
// in-place filter change, so these look it up when they fire.
document.addEventListener("click", (event) => {
  for (const picker of $$(".picker[open]")) if (!picker.contains(event.target)) picker.open = false;
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") $$(".picker[open]").forEach((picker) => (picker.open = false));
  const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement?.tagName);
  if (event.key === "/" && !typing) {
    event.preventDefault();
    $("#feed-filters input[name=q]")?.focus();
  }
});
// The browser restores disabled inputs on back navigation from its cache: undo it.
addEventListener("pageshow", () => $$("#feed-filters input").forEach((input) => (input.disabled = false)));

// -- event-name picker --------------------------------------------------------------------------

const number = new Intl.NumberFormat("en-US");

async function loadNames(picker) {
  if (picker.dataset.loaded) return;
  picker.dataset.loaded = "1";
  const box = $("[data-names]", picker);
  const input = $("[data-event-input]", picker);
  box.innerHTML = '<p class="muted small">Loading names…</p>';
  let groups;
  try {
    const response = await fetch(picker.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(String(response.status));
    groups = (await response.json()).groups;
  } catch {
    box.innerHTML = '<p class="muted small">The stored names could not be loaded; type a name above.</p>';
    delete picker.dataset.loaded;
    return;
  }
  if (!groups.length) {
    box.innerHTML = '<p class="muted small">No events in this range yet; type a name above.</p>';
    return;
  }
  box.replaceChildren(...groups.map(renderGroup));
  box.addEventListener("click", (event) => {
    const button = event.target.closest("[data-term]");
    if (!button) return;
    input.value = button.dataset.term;
    input.form.requestSubmit();
  });
  input.addEventListener("input", () => {
    const needle = input.value.replace(/^!/, "").replace(/\*$/, "").toLowerCase();
    for (const row of $$(".ns, .nm", box)) row.hidden = needle && !row.dataset.name.toLowerCase().includes(needle);
    for (const group of $$(".group", box)) group.hidden = !$$(".ns, .nm", group).some((row) => !row.hidden);
  });
}

function pickRow(cls, term, label, raw, count) {
  const row = document.createElement("div");
  row.className = cls;
  row.dataset.name = term;
  const pick = document.createElement("button");
  pick.type = "button";
  pick.className = "pick";
  pick.dataset.term = term;
  pick.title = `Show ${term}`;
  pick.textContent = label;
  if (raw) {
    const code = document.createElement("span");
    code.className = "raw";
    code.textContent = raw;
    pick.append(code);
  }
  const n = document.createElement("span");
  n.className = "n";
  n.textContent = number.format(count);
  const exclude = document.createElement("button");
  exclude.type = "button";
  exclude.className = "exclude";
  exclude.dataset.term = `!${term}`;
  exclude.title = `Hide ${term}`;
  exclude.textContent = "exclude";
  row.append(pick, n, exclude);
  return row;
}

function renderGroup(group) {
  const el = document.createElement("div");
  el.className = "group";
  el.append(pickRow("ns", group.prefix, group.prefix, "", group.count));
  for (const item of group.names) {
    const last = item.name.slice(group.namespace.length + 1) || item.name;
    el.append(pickRow("nm", item.name, last, item.name === last ? "" : item.name, item.count));
  }
  return el;
}

// -- load older ---------------------------------------------------------------------------------

function setUpLoadOlder() {
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
    const shown = Number(count.dataset.shown) + added;
    count.dataset.shown = String(shown);
    count.textContent = `${number.format(shown)}${marker ? "+" : ""} event${shown === 1 ? "" : "s"}`;
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

// -- histogram ----------------------------------------------------------------------------------

const TICK_STEPS = [MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY];
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  if (text !== undefined) el.textContent = text;
  return el;
}

function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

function timeLabel(date, step) {
  const p = parts(date);
  const day = `${p.monthName} ${Number(p.day)}`;
  if (step >= DAY) return day;
  if (p.hour === "00" && p.minute === "00") return day;
  return `${p.hour}:${p.minute}`;
}

function span(start, end) {
  const a = parts(start), b = parts(end);
  const from = `${a.hour}:${a.minute}${end - start < MINUTE ? ":" + a.second : ""}`;
  const to = `${b.hour}:${b.minute}${end - start < MINUTE ? ":" + b.second : ""}`;
  const sameDay = dayKey(start) === dayKey(end);
  return sameDay ? `${a.monthName} ${Number(a.day)}, ${from} – ${to}` : `${a.monthName} ${Number(a.day)} ${from} – ${b.monthName} ${Number(b.day)} ${to}`;
}

const histogram = {
  data: null,

  async load() {
    const box = $("#histogram");
    if (!box) return;
    try {
      const response = await fetch(box.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(String(response.status));
      this.data = await response.json();
    } catch {
      $("[data-plot]", box).innerHTML = '<p class="muted small">The histogram could not be loaded.</p>';
      return;
    }
    this.data.since = new Date(this.data.since);
    this.data.until = new Date(this.data.until);
    for (const b of this.data.buckets) {
      b.start = new Date(b.start);
      b.end = new Date(b.end);
    }
    this.draw();
    new ResizeObserver(() => this.draw()).observe($("[data-plot]", box));
    this.listen(box);
  },

  draw() {
    const box = $("#histogram");
    if (!box || !this.data) return;
    const plot = $("[data-plot]", box);
    const width = plot.clientWidth, height = plot.clientHeight;
    if (!width) return;
    const m = { left: 40, right: 8, top: 8, bottom: 22 };
    const { since, until, buckets } = this.data;
    const t0 = since.getTime(), t1 = Math.max(until.getTime(), t0 + 1000);
    const innerW = width - m.left - m.right, innerH = height - m.top - m.bottom;
    const x = (t) => m.left + ((t - t0) / (t1 - t0)) * innerW;
    const max = Math.max(0, ...buckets.map((b) => b.count));
    // Whole events only: a max of 1 must not grow a 0.5 tick.
    const step = max ? Math.max(1, niceStep(max / 3)) : 1;
    const top = max ? Math.ceil(max / step) * step : 1;
    const y = (n) => m.top + innerH - (n / top) * innerH;
    this.geometry = { m, x, t0, t1, innerW, innerH, width };

    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `Events over time, at most ${max} per bar` });
    for (let n = 0; n <= top; n += step) {
      root.append(svg("line", { class: n ? "grid" : "axis", x1: m.left, x2: width - m.right, y1: Math.round(y(n)) + 0.5, y2: Math.round(y(n)) + 0.5 }));
      root.append(svg("text", { class: "tick", x: m.left - 8, y: y(n) + 4, "text-anchor": "end" }, number.format(n)));
    }
    // Time ticks on round values of the zone shown, at most one per ~90 px.
    const tickStep = TICK_STEPS.find((s) => (t1 - t0) / s <= innerW / 90) || 30 * DAY;
    const offset = zone() === "utc" ? 0 : -new Date(t0).getTimezoneOffset() * MINUTE;
    for (let t = Math.ceil((t0 + offset) / tickStep) * tickStep - offset; t <= t1; t += tickStep) {
      const tx = Math.round(x(t)) + 0.5;
      root.append(svg("line", { class: "axis", x1: tx, x2: tx, y1: m.top + innerH, y2: m.top + innerH + 4 }));
      root.append(svg("text", { class: "tick", x: tx, y: height - 4, "text-anchor": "middle" }, timeLabel(new Date(t), tickStep)));
    }
    this.bars = buckets.map((b, i) => {
      const left = x(Math.max(b.start.getTime(), t0)), right = x(Math.min(b.end.getTime(), t1));
      const gap = right - left > 4 ? 1 : 0;
      const h = b.count ? Math.max(2, m.top + innerH - y(b.count)) : 0;
      const rect = svg("rect", { class: "bar", x: left + gap / 2, width: Math.max(right - left - gap, 0.5), y: m.top + innerH - h, height: h, rx: Math.min(2, (right - left) / 4), "data-index": i });
      root.append(rect);
      return { rect, left, right, bucket: b, top: m.top + innerH - h };
    });
    this.selection = svg("rect", { class: "selection", x: 0, y: m.top, width: 0, height: innerH, visibility: "hidden" });
    root.append(this.selection);
    plot.replaceChildren(root);
    const note = $("[data-histogram-note]", box);
    if (note) note.textContent = max ? "Drag across the chart to zoom in" : "No events in this range";
  },

  barAt(px) {
    return this.bars?.find((bar) => px >= bar.left && px < bar.right);
  },

  listen(box) {
    const plot = $("[data-plot]", box);
    const tip = $("[data-tip]", box);
    let dragFrom = null;
    const localX = (event) => {
      const { m, width } = this.geometry;
      const px = event.clientX - plot.getBoundingClientRect().left;
      return Math.min(Math.max(px, m.left), width - m.right);
    };
    const timeAt = (px) => {
      const { m, t0, t1, innerW } = this.geometry;
      return t0 + ((px - m.left) / innerW) * (t1 - t0);
    };
    const showTip = (px) => {
      const bar = this.barAt(px);
      for (const other of this.bars) other.rect.classList.toggle("hot", other === bar);
      if (!bar) {
        tip.hidden = true;
        return;
      }
      const { count, start, end } = bar.bucket;
      tip.innerHTML = "";
      const strong = document.createElement("strong");
      strong.textContent = `${number.format(count)} event${count === 1 ? "" : "s"}`;
      tip.append(strong, ` · ${span(start, end)}`);
      tip.hidden = false;
      const plotBox = plot.getBoundingClientRect(), boxRect = box.getBoundingClientRect();
      const left = plotBox.left - boxRect.left + (bar.left + bar.right) / 2;
      const half = tip.offsetWidth / 2 + 4;
      tip.style.left = `${Math.min(Math.max(left, half), boxRect.width - half)}px`;
      tip.style.top = `${plotBox.top - boxRect.top + Math.min(bar.top, this.geometry.m.top + this.geometry.innerH - 4)}px`;
    };
    plot.addEventListener("pointerdown", (event) => {
      if (event.button !== 0 || !this.geometry) return;
      dragFrom = localX(event);
      plot.setPointerCapture(event.pointerId);
    });
    plot.addEventListener("pointermove", (event) => {
      if (!this.geometry) return;
      const px = localX(event);
      if (dragFrom === null) return showTip(px);
      tip.hidden = true;
      const left = Math.min(dragFrom, px), w = Math.abs(px - dragFrom);
      this.selection.setAttribute("x", left);
      this.selection.setAttribute("width", w);
      this.selection.setAttribute("visibility", w > 1 ? "visible" : "hidden");
    });
    plot.addEventListener("pointerleave", () => {
      if (dragFrom !== null) return;
      tip.hidden = true;
      this.bars?.forEach((bar) => bar.rect.classList.remove("hot"));
    });
    plot.addEventListener("pointerup", (event) => {
      if (dragFrom === null) return;
      const px = localX(event);
      const from = dragFrom;
      dragFrom = null;
      let since, until;
      if (Math.abs(px - from) >= 4) {
        since = timeAt(Math.min(from, px));
        until = timeAt(Math.max(from, px));
      } else {
        // A click on a bar narrows to that bar.
        const bar = this.barAt(px);
        if (!bar || !bar.bucket.count) return;
        since = bar.bucket.start.getTime();
        until = bar.bucket.end.getTime();
      }
      this.selection.setAttribute("visibility", "hidden");
      navigate(feedUrl({
        range: null,
        since: isoZ(new Date(Math.floor(since / 1000) * 1000)),
        until: isoZ(new Date(Math.ceil(until / 1000) * 1000)),
      }));
    });
  },
};

// -- live push ----------------------------------------------------------------------------------
//
// One socket per page. It subscribes with the page's filter (again after every in-place filter
// change), inserts pushed rows in (occurred, id) order, pauses when the reader scrolls down or
// reads an older page, and after every (re)subscription fetches what it may have missed since
// its newest row, so a reconnect leaves no gap and no duplicate.

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

/** The filter part of the page's query string: what the live socket subscribes to. */
function liveQuery() {
  const params = new URL(location.href).searchParams;
  for (const key of PAGING) params.delete(key);
  return params.toString();
}

const live = {
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
        navigate(`${location.pathname}?${liveQuery()}`); // an older page: go to the newest one
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
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/feed`);
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
      this.socket.send(JSON.stringify({ type: "subscribe", query: liveQuery() }));
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
      navigate(location.pathname + "?" + liveQuery(), { push: false });
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
    const count = $("[data-count]");
    if (count) {
      const shown = $$(".row", list).length;
      count.dataset.shown = String(shown);
      count.textContent = `${number.format(shown)}${$("[data-load-older]") ? "+" : ""} event${shown === 1 ? "" : "s"}`;
    }
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
    const query = liveQuery();
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
      if (liveQuery() !== query) return;
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

// -- in-place navigation ------------------------------------------------------------------------
//
// Filter links and forms swap the page's content for the new feed instead of reloading, so the
// live socket just subscribes again; the URL still changes, and back/forward work.

async function navigate(url, { push = true } = {}) {
  let doc;
  try {
    const response = await fetch(url, { credentials: "same-origin" });
    doc = new DOMParser().parseFromString(await response.text(), "text/html");
  } catch {
    location.assign(url);
    return;
  }
  const fresh = doc.querySelector(".feed-page");
  if (!fresh) {
    location.assign(url);
    return;
  }
  if (push) history.pushState({}, "", url);
  document.title = doc.title;
  $(".feed-page").replaceWith(document.adoptNode(fresh));
  setUp();
  live.bind();
  live.subscribe();
}

function isFeedUrl(href) {
  const url = new URL(href, location.href);
  return url.origin === location.origin && url.pathname === location.pathname;
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  if (!link.closest(".feed-page") || link.matches("[data-load-older]") || !isFeedUrl(link.href)) return;
  event.preventDefault();
  navigate(link.href);
});

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (event.defaultPrevented || !form.closest(".feed-page") || form.method.toLowerCase() !== "get") return;
  event.preventDefault();
  const params = new URLSearchParams();
  for (const [key, value] of new FormData(form)) if (typeof value === "string") params.append(key, value);
  navigate(`${form.action}?${params}`);
});

addEventListener("popstate", () => navigate(location.href, { push: false }));

// -- start --------------------------------------------------------------------------------------

function setUp() {
  for (const button of $$("[data-tz]")) button.addEventListener("click", () => setZone(button.dataset.tz));
  setUpRangeForm();
  setUpFilterBar();
  setUpLoadOlder();
  renderZone();
  histogram.load();
}

setUp();
live.start();
setInterval(tickRelativeTimes, 5000);
// Browser tests reach the live socket through this.
window.eventfeedLive = live;
