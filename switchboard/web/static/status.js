// Switchboard status page: times in the viewer's own zone, and job rows that expand.
"use strict";

function localTimes() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "your time zone";
  const shown = document.getElementById("zone");
  if (shown) shown.textContent = zone;
  for (const el of document.querySelectorAll("time[datetime]")) {
    const at = new Date(el.dateTime);
    if (Number.isNaN(at.getTime())) continue;
    el.title = el.dateTime;
    el.textContent = at.toLocaleString(undefined, {
      year: "numeric", month: "short", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    });
  }
}

function expandableJobs() {
  for (const button of document.querySelectorAll("button.expand")) {
    button.addEventListener("click", () => {
      const row = document.getElementById(button.getAttribute("aria-controls"));
      const open = button.getAttribute("aria-expanded") === "true";
      button.setAttribute("aria-expanded", String(!open));
      button.textContent = open ? "+" : "−";
      if (row) row.hidden = open;
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes();
  expandableJobs();
});
