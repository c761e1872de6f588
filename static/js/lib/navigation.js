// In-place navigation on the feed: filter links and forms swap the page's content for the new
// feed instead of reloading, so the live socket just subscribes again; the URL still changes,
// and back/forward work. The URL is the whole state: a pasted link shows the same feed.

import { $ } from "./dom.js";

const PAGING = ["before", "after", "partial"];
const swapped = new Set();

/** Run `fn` after every in-place swap of the feed's content. */
export function onSwap(fn) {
  swapped.add(fn);
}

/** The current feed URL with paging removed and `changes` applied (null deletes a key). */
export function feedUrl(changes) {
  const url = new URL(location.href);
  for (const key of PAGING) url.searchParams.delete(key);
  for (const [key, value] of Object.entries(changes)) {
    url.searchParams.delete(key);
    if (value !== null) url.searchParams.set(key, value);
  }
  return url.pathname + url.search;
}

/** The filter part of the page's query string: what the live socket subscribes to. */
export function filterQuery() {
  const params = new URL(location.href).searchParams;
  for (const key of PAGING) params.delete(key);
  return params.toString();
}

/** 2026-11-21T14:03:22Z: whole seconds, as the filter's time fields accept. */
export function isoZ(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

// Navigations started so far: a feed that loads after a later navigation began is not shown.
let started = 0;

export async function navigate(url, { push = true } = {}) {
  const mine = ++started;
  let doc;
  try {
    const response = await fetch(url, { credentials: "same-origin" });
    doc = new DOMParser().parseFromString(await response.text(), "text/html");
  } catch {
    if (mine === started) location.assign(url);
    return;
  }
  // Two quick clicks, or back then forward: the answers can come in either order, and the
  // page must show the feed of the last one, which its URL names.
  if (mine !== started) return;
  const fresh = doc.querySelector(".feed-page");
  if (!fresh) {
    location.assign(url);
    return;
  }
  if (push) history.pushState({}, "", url);
  document.title = doc.title;
  $(".feed-page").replaceWith(document.adoptNode(fresh));
  for (const fn of swapped) fn();
}

function isFeedUrl(href) {
  const url = new URL(href, location.href);
  return url.origin === location.origin && url.pathname === location.pathname;
}

/** Intercept the feed's own links and GET forms; called once per page load. */
export function startNavigation() {
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

  // A jump to an anchor (the skip link) pops state too, but shows the same feed.
  let shown = location.pathname + location.search;
  addEventListener("popstate", () => {
    if (location.pathname + location.search === shown) return;
    navigate(location.href, { push: false });
  });
  onSwap(() => (shown = location.pathname + location.search));
}
