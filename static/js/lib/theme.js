// The colour scheme: follows the system unless the reader picks light or dark with the switch in
// the top bar. The choice is a cookie, so the server writes data-theme on <html> and the page
// never flashes the other scheme.

import { $ } from "./dom.js";

const COOKIE = "eventfeed_theme";
const NEXT = { system: "dark", dark: "light", light: "system" };
const LABELS = { system: "Theme: system", dark: "Theme: dark", light: "Theme: light" };

export function theme() {
  const match = document.cookie.match(/(?:^|; )eventfeed_theme=(light|dark)/);
  return match ? match[1] : "system";
}

function apply(value) {
  if (value === "system") {
    delete document.documentElement.dataset.theme;
    document.cookie = `${COOKIE}=; path=/; max-age=0; SameSite=Lax`;
  } else {
    document.documentElement.dataset.theme = value;
    document.cookie = `${COOKIE}=${value}; path=/; max-age=31536000; SameSite=Lax`;
  }
  render();
}

function render() {
  const button = $("[data-theme-toggle]");
  if (!button) return;
  const value = theme();
  button.dataset.value = value;
  button.textContent = LABELS[value];
  button.title = `Colour scheme (${value === "system" ? "follows the system" : value}); click for ${NEXT[value]}`;
}

export function startTheme() {
  render();
  $("[data-theme-toggle]")?.addEventListener("click", () => apply(NEXT[theme()]));
}
