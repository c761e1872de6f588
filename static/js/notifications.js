// Automation notifications as toasts on every page of a signed-in user (/ws/notifications).
// The socket reconnects with a growing delay; a toast missed while disconnected is still on the
// notifications page.

import { appPath, socketUrl } from "./lib/dom.js";
import { renderTimes } from "./lib/times.js";

const region = document.createElement("div");
region.className = "toasts";
region.setAttribute("role", "status");
region.setAttribute("aria-live", "polite");
document.body.append(region);

function toast(note) {
  const el = document.createElement(note.event_url ? "a" : "div");
  el.className = "toast";
  if (note.event_url) el.href = note.event_url;
  // Which automation, and when in the zone and format of the top bar's switch (not an ISO stamp).
  const head = document.createElement("span");
  head.className = "toast-head";
  const title = document.createElement("strong");
  title.textContent = note.automation || "Notification";
  const when = document.createElement("time");
  when.dateTime = note.created;
  when.dataset.format = "time";
  when.textContent = note.created;
  head.append(title, " ", when);
  const subject = document.createElement("span");
  subject.className = "toast-subject";
  subject.textContent = note.subject;
  el.append(head, subject);
  renderTimes(el);
  if (note.body) {
    const body = document.createElement("span");
    body.textContent = note.body;
    el.append(body);
  }
  region.append(el);
  setTimeout(() => el.classList.add("toast-out"), 12000);
  setTimeout(() => el.remove(), 12600);
}

let delay = 1000;
function connect() {
  const socket = new WebSocket(socketUrl(appPath("notificationsSocket")));
  socket.addEventListener("open", () => {
    delay = 1000;
    document.documentElement.dataset.notifications = "connected";
  });
  socket.addEventListener("message", (e) => {
    const message = JSON.parse(e.data);
    if (message.type === "notification") toast(message);
  });
  socket.addEventListener("close", (e) => {
    document.documentElement.dataset.notifications = "closed";
    if (e.code === 4401) return;
    setTimeout(connect, delay);
    delay = Math.min(delay * 2, 30000);
  });
}
connect();
