// The feed's histogram: events over the range stacked by severity (failures and warnings in
// their colours), linear or log, advancing live. Drag (or click a bar) to zoom in; from the
// keyboard, ←/→ pick a bar, Enter zooms into it, Home/End jump to the ends.

import { $, number, plural } from "./dom.js";
import { MINUTE, HOUR, DAY, zone, parts, span } from "./times.js";
import { feedUrl, isoZ, navigate } from "./navigation.js";

const TICK_STEPS = [MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY];
const SVG = "http://www.w3.org/2000/svg";
const SCALE_KEY = "eventfeed.histogram-scale";
// Bottom to top: what a reader looks for sits on top, in the warning colours.
const LAYERS = ["other", "warn", "bad"];

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

function scale() {
  try {
    return localStorage.getItem(SCALE_KEY) === "log" ? "log" : "linear";
  } catch {
    return "linear";
  }
}

/** n to two significant figures (1,234,567 → 1,200,000). */
function roughly(n) {
  if (n < 100) return n;
  const unit = 10 ** (Math.floor(Math.log10(n)) - 1);
  return Math.round(n / unit) * unit;
}

function describe(bucket) {
  const { bad, warn } = bucket.severity;
  const extra = [bad && `${number.format(bad)} failed`, warn && `${number.format(warn)} warning`].filter(Boolean).join(", ");
  return `${plural(bucket.count, "event")}${extra ? ` (${extra})` : ""} · ${span(bucket.start, bucket.end)}`;
}

export const histogram = {
  data: null,
  active: -1, // the bar the keyboard points at
  pending: false,

  async load() {
    const box = $("#histogram");
    this.data = null;
    this.active = -1;
    if (!box) return;
    this.bindScale(box);
    try {
      const response = await fetch(box.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(String(response.status));
      this.data = await response.json();
    } catch {
      $("[data-plot]", box).innerHTML = '<p class="muted small">The histogram could not be loaded.</p>';
      return;
    }
    const params = new URL(location.href).searchParams;
    // A preset range ends "now": it slides forward as the feed stays open.
    this.data.sliding = !params.get("since") && !params.get("until");
    this.data.since = new Date(this.data.since);
    this.data.until = new Date(this.data.until);
    this.data.width = this.data.bucket_seconds * 1000;
    for (const b of this.data.buckets) {
      b.start = new Date(b.start);
      b.end = new Date(b.end);
      b.severity ||= { bad: 0, warn: 0, other: b.count };
    }
    this.showTotal();
    this.draw();
    new ResizeObserver(() => this.draw()).observe($("[data-plot]", box));
    this.listen(box);
  },

  bindScale(box) {
    for (const button of box.querySelectorAll("[data-scale]")) {
      button.setAttribute("aria-pressed", String(button.dataset.scale === scale()));
      button.addEventListener("click", () => {
        try {
          localStorage.setItem(SCALE_KEY, button.dataset.scale);
        } catch {
          /* this page only */
        }
        for (const other of box.querySelectorAll("[data-scale]")) other.setAttribute("aria-pressed", String(other === button));
        this.draw();
      });
    }
  },

  showTotal() {
    const total = $("[data-total]");
    if (!total || !this.data) return;
    // An estimate (a filter the counts cannot serve, with many matches) says so, to two figures.
    if (this.data.estimated) {
      total.textContent = `about ${plural(roughly(this.data.total), "event")} in this range (estimated)`;
      total.title = "Estimated from a sample of the range: counting every match would take seconds";
    } else {
      total.textContent = `${plural(this.data.total, "event")} in this range`;
      total.removeAttribute("title");
    }
    total.dataset.estimated = String(Boolean(this.data.estimated));
  },

  /** A live row arrived: count it, sliding a preset range forward; one redraw per frame. */
  add(occurred, tone) {
    const data = this.data;
    if (!data || Number.isNaN(occurred.getTime())) return;
    const t = occurred.getTime();
    if (data.sliding && t > data.until.getTime()) this.slide(Math.max(t, Date.now()));
    const bucket = data.buckets.find((b) => t >= b.start.getTime() && t < b.end.getTime());
    if (!bucket) return;
    const layer = tone === "bad" || tone === "warn" ? tone : "other";
    bucket.severity[layer] += 1;
    bucket.count += 1;
    data.total += 1;
    this.showTotal();
    this.schedule();
  },

  /** Move a preset range's end to `now`: whole new buckets join, the oldest leave. */
  slide(now) {
    const data = this.data;
    const shift = now - data.until.getTime();
    data.until = new Date(now);
    data.since = new Date(data.since.getTime() + shift);
    let last = data.buckets[data.buckets.length - 1];
    // The last bucket was clipped at the old end: it reaches its full width again.
    last.end = new Date(Math.min(last.start.getTime() + data.width, now + 1));
    while (last.end.getTime() <= now) {
      const start = new Date(last.start.getTime() + data.width);
      last = { start, end: new Date(Math.min(start.getTime() + data.width, now + 1)), count: 0, severity: { bad: 0, warn: 0, other: 0 } };
      data.buckets.push(last);
    }
    while (data.buckets.length && data.buckets[0].end <= data.since) {
      data.total -= data.buckets.shift().count;
    }
  },

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  },

  draw() {
    const box = $("#histogram");
    if (!box || !this.data) return;
    const plot = $("[data-plot]", box);
    const width = plot.clientWidth, height = plot.clientHeight;
    if (!width) return;
    const log = scale() === "log";
    const m = { left: 40, right: 8, top: 8, bottom: 22 };
    const { since, until, buckets } = this.data;
    const t0 = since.getTime(), t1 = Math.max(until.getTime(), t0 + 1000);
    const innerW = width - m.left - m.right, innerH = height - m.top - m.bottom;
    const x = (t) => m.left + ((t - t0) / (t1 - t0)) * innerW;
    const max = Math.max(0, ...buckets.map((b) => b.count));
    let ticks, y;
    if (log) {
      // log10(n + 1): a bucket of 1 still shows, one spike no longer flattens the rest.
      const top = Math.max(1, Math.ceil(Math.log10(max + 1)));
      y = (n) => m.top + innerH - (Math.log10(n + 1) / top) * innerH;
      ticks = Array.from({ length: top + 1 }, (_, i) => (i ? 10 ** i : 0));
    } else {
      // Whole events only: a max of 1 must not grow a 0.5 tick.
      const step = max ? Math.max(1, niceStep(max / 3)) : 1;
      const top = max ? Math.ceil(max / step) * step : 1;
      y = (n) => m.top + innerH - (n / top) * innerH;
      ticks = [];
      for (let n = 0; n <= top; n += step) ticks.push(n);
    }
    this.geometry = { m, x, t0, t1, innerW, innerH, width };

    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, "aria-hidden": "true" });
    for (const n of ticks) {
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
    const base = m.top + innerH;
    this.bars = buckets.map((b, i) => {
      const left = x(Math.max(b.start.getTime(), t0)), right = x(Math.min(b.end.getTime(), t1));
      const gap = right - left > 4 ? 1 : 0;
      const group = svg("g", { class: "bar", "data-index": i });
      const total = b.count ? Math.max(2, base - y(b.count)) : 0;
      // Layers share the bar's height in proportion to their counts (also on a log scale).
      let below = 0;
      for (const layer of LAYERS) {
        const n = b.severity[layer];
        if (!n) continue;
        const h = (total * n) / b.count;
        group.append(svg("rect", { class: `layer ${layer}`, x: left + gap / 2, width: Math.max(right - left - gap, 0.5), y: base - below - h, height: h }));
        below += h;
      }
      root.append(group);
      return { rect: group, left, right, bucket: b, top: base - total };
    });
    this.selection = svg("rect", { class: "selection", x: 0, y: m.top, width: 0, height: innerH, visibility: "hidden" });
    root.append(this.selection);
    plot.replaceChildren(root);
    const failures = buckets.reduce((n, b) => n + b.severity.bad, 0);
    plot.setAttribute("aria-label", `Events over time: ${plural(this.data.total ?? 0, "event")}, ${number.format(failures)} failed, at most ${number.format(max)} per bar. Arrow keys pick a bar, Enter zooms in.`);
    if (this.active >= 0) this.highlight(this.active);
    const note = $("[data-histogram-note]", box);
    if (note) note.textContent = max ? "Drag across the chart, or use ←/→ and Enter, to zoom in" : "No events in this range";
  },

  barAt(px) {
    return this.bars?.find((bar) => px >= bar.left && px < bar.right);
  },

  /** Show the tip for a bar (pointer or keyboard). */
  highlight(index) {
    const box = $("#histogram");
    const bar = this.bars?.[index];
    const tip = $("[data-tip]", box);
    for (const other of this.bars || []) other.rect.classList.toggle("hot", other === bar);
    if (!bar) {
      tip.hidden = true;
      return;
    }
    const plot = $("[data-plot]", box);
    tip.textContent = "";
    const strong = document.createElement("strong");
    strong.textContent = plural(bar.bucket.count, "event");
    tip.append(strong, ` · ${describe(bar.bucket).split(" · ").slice(1).join(" · ")}`);
    const { bad, warn } = bar.bucket.severity;
    if (bad || warn) {
      const extra = document.createElement("span");
      extra.className = "tip-sev";
      extra.textContent = [bad && `${number.format(bad)} failed`, warn && `${number.format(warn)} warning`].filter(Boolean).join(" · ");
      tip.append(extra);
    }
    tip.hidden = false;
    const plotBox = plot.getBoundingClientRect(), boxRect = box.getBoundingClientRect();
    const left = plotBox.left - boxRect.left + (bar.left + bar.right) / 2;
    const half = tip.offsetWidth / 2 + 4;
    tip.style.left = `${Math.min(Math.max(left, half), boxRect.width - half)}px`;
    tip.style.top = `${plotBox.top - boxRect.top + Math.min(bar.top, this.geometry.m.top + this.geometry.innerH - 4)}px`;
    const live = $("[data-histogram-live]", box);
    if (live && document.activeElement === plot) live.textContent = describe(bar.bucket);
  },

  zoomTo(since, until) {
    this.selection?.setAttribute("visibility", "hidden");
    navigate(feedUrl({
      range: null,
      since: isoZ(new Date(Math.floor(since / 1000) * 1000)),
      until: isoZ(new Date(Math.ceil(until / 1000) * 1000)),
    }));
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
    plot.addEventListener("keydown", (event) => {
      const bars = this.bars || [];
      if (!bars.length) return;
      const last = bars.length - 1;
      const moves = { ArrowLeft: -1, ArrowRight: 1 };
      if (event.key in moves) this.active = Math.min(last, Math.max(0, (this.active < 0 ? last + 1 : this.active) + moves[event.key]));
      else if (event.key === "Home") this.active = 0;
      else if (event.key === "End") this.active = last;
      else if (event.key === "Enter" && this.active >= 0) {
        const { start, end } = bars[this.active].bucket;
        event.preventDefault();
        this.zoomTo(start.getTime(), end.getTime());
        return;
      } else return;
      event.preventDefault();
      this.highlight(this.active);
    });
    plot.addEventListener("blur", () => {
      tip.hidden = true;
      this.bars?.forEach((bar) => bar.rect.classList.remove("hot"));
    });
    plot.addEventListener("pointerdown", (event) => {
      if (event.button !== 0 || !this.geometry) return;
      dragFrom = localX(event);
      plot.setPointerCapture(event.pointerId);
    });
    plot.addEventListener("pointermove", (event) => {
      if (!this.geometry) return;
      const px = localX(event);
      if (dragFrom === null) return this.highlight(this.bars.indexOf(this.barAt(px)));
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
      if (Math.abs(px - from) >= 4) {
        this.zoomTo(timeAt(Math.min(from, px)), timeAt(Math.max(from, px)));
        return;
      }
      // A click on a bar narrows to that bar.
      const bar = this.barAt(px);
      if (!bar || !bar.bucket.count) return;
      this.zoomTo(bar.bucket.start.getTime(), bar.bucket.end.getTime());
    });
  },
};
