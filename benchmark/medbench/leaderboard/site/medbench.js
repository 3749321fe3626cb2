// medbench leaderboards: sortable tables and the metric chooser of the CI plots.
// Plain script, no libraries, no network. Without it the page is complete: rank order, every plot.
"use strict";

function sortKey(row, col, type) {
  const cell = row.cells[col];
  const raw = cell ? cell.getAttribute("data-value") : "";
  if (raw === null || raw === "") return null;
  if (type === "number") {
    const n = Number(raw);
    return Number.isFinite(n) ? n : null;
  }
  return raw.toLowerCase();
}

function sortTable(table, col, header) {
  const type = header.getAttribute("data-type");
  const current = header.getAttribute("aria-sort");
  const direction = current
    ? (current === "ascending" ? "descending" : "ascending")
    : header.getAttribute("data-first") || "ascending";
  const sign = direction === "ascending" ? 1 : -1;
  const body = table.tBodies[0];
  const rows = Array.from(body.rows).filter((row) => row.hasAttribute("data-order"));
  // a row's record (a full-width row right below it) moves with it
  const records = new Map(rows.map((row) => [row, row.nextElementSibling]));
  rows.sort((a, b) => {
    const ka = sortKey(a, col, type);
    const kb = sortKey(b, col, type);
    if (ka === null && kb === null) return a.dataset.order - b.dataset.order;
    if (ka === null) return 1; // missing values last, whichever the direction
    if (kb === null) return -1;
    if (ka < kb) return -sign;
    if (ka > kb) return sign;
    return a.dataset.order - b.dataset.order; // stable: ties keep the rank order
  });
  rows.forEach((row) => {
    const record = records.get(row);
    body.appendChild(row);
    if (record && record.classList.contains("record")) body.appendChild(record);
  });
  for (const th of header.parentNode.cells) th.removeAttribute("aria-sort");
  header.setAttribute("aria-sort", direction);
  const status = document.querySelector('.sort-status[data-for="' + table.id + '"]');
  if (status) status.textContent = "Sorted by " + header.textContent.trim() + ", " + direction + ".";
}

function setUpTables() {
  document.querySelectorAll("table.sortable").forEach((table) => {
    const headers = table.tHead.rows[0].cells;
    Array.from(headers).forEach((th, col) => {
      const button = th.querySelector("button");
      if (button) button.addEventListener("click", () => sortTable(table, col, th));
    });
  });
}

function setUpChooser() {
  const chooser = document.getElementById("ci-metric");
  if (!chooser) return;
  const show = () => {
    document.querySelectorAll("figure.ci-plot").forEach((fig) => {
      fig.hidden = fig.getAttribute("data-metric") !== chooser.value;
    });
  };
  chooser.addEventListener("change", show);
  show();
}

document.addEventListener("DOMContentLoaded", () => {
  setUpTables();
  setUpChooser();
});
