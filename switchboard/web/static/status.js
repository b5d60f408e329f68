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

const EXPANDED = "switchboard.expanded";  // targets whose jobs are open, kept across refreshes
const REFRESH = "switchboard.refresh";

function expanded() {
  try { return new Set(JSON.parse(sessionStorage.getItem(EXPANDED) || "[]")); }
  catch (e) { return new Set(); }
}

function setOpen(button, open) {
  const row = document.getElementById(button.getAttribute("aria-controls"));
  button.setAttribute("aria-expanded", String(open));
  button.textContent = open ? "−" : "+";
  if (row) row.hidden = !open;
}

function expandableJobs() {
  const open = expanded();
  for (const button of document.querySelectorAll("button.expand")) {
    const target = button.closest("tbody").dataset.target;
    if (open.has(target)) setOpen(button, true);
    button.addEventListener("click", () => {
      const now = button.getAttribute("aria-expanded") !== "true";
      setOpen(button, now);
      const kept = expanded();
      if (now) kept.add(target); else kept.delete(target);
      sessionStorage.setItem(EXPANDED, JSON.stringify([...kept]));
    });
  }
}

function autoRefresh() {
  const box = document.getElementById("auto-refresh");
  if (!box) return;
  box.checked = localStorage.getItem(REFRESH) === "on";
  let timer = null;
  const arm = () => {
    clearTimeout(timer);
    if (box.checked) timer = setTimeout(() => window.location.reload(), 30000);
  };
  box.addEventListener("change", () => {
    localStorage.setItem(REFRESH, box.checked ? "on" : "off");
    arm();
  });
  arm();
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes();
  expandableJobs();
  autoRefresh();
});
