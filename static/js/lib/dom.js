// Small DOM helpers every page module shares.

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
export const number = new Intl.NumberFormat("en-US");

/** A path the page gives its scripts (`data-<name>` on <body>, filled by `{% url %}`), so no
 *  script spells a URL of its own. */
export function appPath(name) {
  const value = document.body.dataset[name];
  if (!value) throw new Error(`the page does not give the path data-${name}`);
  return value;
}

/** A websocket URL for a path on this host. */
export function socketUrl(path) {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
}

/** `n event(s)` with a thousands separator. */
export function plural(n, word) {
  return `${number.format(n)} ${word}${n === 1 ? "" : "s"}`;
}
