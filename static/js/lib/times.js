// Times on every page: one format (24-hour, `2026-11-21 14:03:22`), one relative wording (the
// server's `ago` filter: "12 s ago", "3 min ago", "2 h ago", "4 d ago"), and the Local/UTC
// switch, remembered in localStorage and applied to every time on the page.
//
// Markup it reads:
//   <time class="when" datetime> with .rel/.abs children     feed rows
//   <time data-abs datetime>                                 a full date and time
//   <time data-format="relative|datetime|time" datetime>     event page, automations
//   [data-tz="local|utc"] buttons                           the switch, on any page

import { $, $$ } from "./dom.js";

const TZ_KEY = "eventfeed.tz";
export const MINUTE = 60_000, HOUR = 3_600_000, DAY = 86_400_000;
const listeners = new Set();

let chosen = null;
export function zone() {
  if (chosen) return chosen;
  try {
    chosen = localStorage.getItem(TZ_KEY) === "utc" ? "utc" : "local";
  } catch {
    chosen = "local"; // storage disabled: local time, not remembered
  }
  return chosen;
}

export function setZone(value) {
  chosen = value === "utc" ? "utc" : "local";
  try {
    localStorage.setItem(TZ_KEY, value);
  } catch {
    /* the switch still works for this page */
  }
  renderZone();
}

/** Run `fn` after every zone change (the histogram redraws its axis, the range form refills). */
export function onZoneChange(fn) {
  listeners.add(fn);
}

// Building an Intl.DateTimeFormat costs far more than using one: one pair per zone, kept.
const formats = {};
function formatsFor(timeZone) {
  const key = timeZone || "local";
  return (formats[key] ||= {
    parts: new Intl.DateTimeFormat("en-US", {
      year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
      hourCycle: "h23", timeZone,
    }),
    month: new Intl.DateTimeFormat("en-US", { month: "short", timeZone }),
  });
}

/** Date parts in the chosen zone, 24-hour. */
export function parts(date) {
  const f = formatsFor(zone() === "utc" ? "UTC" : undefined);
  const out = {};
  for (const p of f.parts.formatToParts(date)) out[p.type] = p.value;
  out.monthName = f.month.format(date);
  out.ms = String(date.getUTCMilliseconds()).padStart(3, "0");
  return out;
}

/** "UTC", or "UTC+1, Europe/Paris" for the reader's zone. */
export function zoneName(date = new Date()) {
  if (zone() === "utc") return "UTC";
  const minutes = -date.getTimezoneOffset();
  const sign = minutes < 0 ? "−" : "+";
  const hh = Math.floor(Math.abs(minutes) / 60), mm = Math.abs(minutes) % 60;
  const offset = minutes === 0 ? "UTC" : `UTC${sign}${hh}${mm ? ":" + String(mm).padStart(2, "0") : ""}`;
  const name = formatsFor(undefined).parts.resolvedOptions().timeZone;
  return name && name !== "UTC" ? `${offset}, ${name}` : offset;
}

/** 2026-11-21 14:03:22 in the chosen zone. */
export function absolute(date) {
  const p = parts(date);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

export function dayKey(date) {
  const p = parts(date);
  return `${p.year}-${p.month}-${p.day}`;
}

/** 14:03:22 today, "Nov 21, 14:03" another day. */
export function short(date, today = dayKey(new Date())) {
  const p = parts(date);
  return dayKey(date) === today ? `${p.hour}:${p.minute}:${p.second}` : `${p.monthName} ${Number(p.day)}, ${p.hour}:${p.minute}`;
}

/** "14:03 – 14:04" within a day, with the days otherwise. */
export function span(start, end) {
  const a = parts(start), b = parts(end);
  const seconds = end - start < MINUTE;
  const from = `${a.hour}:${a.minute}${seconds ? ":" + a.second : ""}`;
  const to = `${b.hour}:${b.minute}${seconds ? ":" + b.second : ""}`;
  return dayKey(start) === dayKey(end)
    ? `${a.monthName} ${Number(a.day)}, ${from} – ${to}`
    : `${a.monthName} ${Number(a.day)} ${from} – ${b.monthName} ${Number(b.day)} ${to}`;
}

/** "12 s ago", word for word as the server's `ago` filter writes it. */
export function ago(date, now = Date.now()) {
  const s = Math.floor((now - date.getTime()) / 1000);
  if (s < 0) return "in the future";
  if (s >= 86400) return `${Math.floor(s / 86400)} d ago`;
  if (s >= 3600) return `${Math.floor(s / 3600)} h ago`;
  if (s >= 60) return `${Math.floor(s / 60)} min ago`;
  return `${s} s ago`;
}

function parse(el) {
  const date = new Date(el.getAttribute("datetime"));
  return Number.isNaN(date.getTime()) ? null : date;
}

/** Fill every time under `root` for the chosen zone; the live push calls it on new rows. */
export function renderTimes(root = document) {
  const today = dayKey(new Date());
  const now = Date.now();
  for (const el of $$(".when[datetime]", root)) {
    const date = parse(el);
    if (!date) continue;
    $(".rel", el).textContent = ago(date, now);
    $(".abs", el).textContent = short(date, today);
    el.title = `${absolute(date)} ${zoneName(date)}`;
  }
  for (const el of $$("time[data-abs], time[data-format]", root)) {
    const date = parse(el);
    if (!date) continue;
    const format = el.dataset.format || "abs";
    if (format === "relative") el.textContent = ago(date, now);
    else if (format === "time") el.textContent = short(date, today);
    else if (format === "datetime") el.textContent = `${absolute(date)}.${parts(date).ms} ${zone() === "utc" ? "UTC" : zoneName(date).split(",")[0]}`;
    else el.textContent = `${absolute(date)}${zone() === "utc" ? " UTC" : ""}`;
    el.title = `${absolute(date)} ${zoneName(date)}`;
  }
}

/** Keep relative times current without touching anything else. */
export function tickRelativeTimes(root = document) {
  const now = Date.now();
  for (const el of $$(".when[datetime] .rel", root)) {
    const date = parse(el.parentElement);
    if (date) el.textContent = ago(date, now);
  }
  for (const el of $$("time[data-format=relative]", root)) {
    const date = parse(el);
    if (date) el.textContent = ago(date, now);
  }
}

export function renderZone() {
  for (const button of $$("[data-tz]")) button.setAttribute("aria-pressed", String(button.dataset.tz === zone()));
  for (const note of $$("[data-tz-note]")) note.textContent = zone() === "utc" ? "in UTC" : `in your local time (${zoneName()})`;
  renderTimes();
  for (const fn of listeners) fn();
}

/** Wire the switch buttons under `root` (the feed replaces its header on every filter change). */
export function bindZoneSwitch(root = document) {
  for (const button of $$("[data-tz]", root)) button.addEventListener("click", () => setZone(button.dataset.tz));
}

let ticking = false;
/** The first page module to start times also starts the clock for relative times. */
export function startTimes() {
  bindZoneSwitch();
  renderZone();
  if (!ticking) {
    ticking = true;
    setInterval(() => tickRelativeTimes(), 5000);
  }
}
