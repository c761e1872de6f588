// The Channels page: show only the fields of the chosen kind (all are in the page, so the form
// also works without this script).
const kind = document.getElementById("id_kind");
const sets = document.querySelectorAll("fieldset[data-kind]");

function show() {
  for (const set of sets) {
    set.hidden = set.dataset.kind !== kind.value;
  }
}

if (kind) {
  kind.addEventListener("change", show);
  show();
}
