// Enabled switches save on change; delete buttons ask first.

for (const form of document.querySelectorAll("form.au-switch")) {
  const box = form.querySelector("input[type=checkbox]");
  const text = form.querySelector(".au-switch-text");
  box.addEventListener("change", async () => {
    const data = new FormData(form);
    const response = await fetch(form.action, { method: "POST", body: data, headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) {
      box.checked = !box.checked;
      return;
    }
    const { enabled } = await response.json();
    box.checked = enabled;
    text.textContent = enabled ? "On" : "Off";
  });
}

for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (e) => {
    if (!window.confirm(form.dataset.confirm)) e.preventDefault();
  });
}
