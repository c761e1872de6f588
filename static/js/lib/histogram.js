// The feed's histogram: events over the range, drag (or click a bar) to zoom in.

import { $, number } from "./dom.js";
import { MINUTE, HOUR, DAY, zone, parts, span } from "./times.js";
import { feedUrl, isoZ, navigate } from "./navigation.js";

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

export const histogram = {
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

