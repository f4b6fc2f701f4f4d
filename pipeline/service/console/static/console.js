// owl console: live grid (server-sent events of a compact JSON delta, polling the same delta where
// EventSource is missing or refused; never reloads, so filters and scroll stay),
// and association rows that fold their members away.
"use strict";
(function () {
  const grid = document.getElementById("grid");
  if (!grid) return;
  const tbody = grid.tBodies[0];
  const live = document.getElementById("live");
  const LETTERS = { _: "not yet", w: "waiting", p: "processing", c: "complete", e: "error",
                    x: "crashed", n: "not applicable", h: "held" };
  let stamp = grid.dataset.stamp;

  function paint(td, ch) {
    if (td.textContent === ch) return;
    td.textContent = ch;
    td.className = "L L" + ch;
    td.title = td.dataset.col + ": " + (LETTERS[ch] || ch);
  }

  function newRow(ds, info) {
    const tr = document.createElement("tr");
    tr.id = "r-" + ds; tr.dataset.ds = ds;
    if (info.parent) { tr.className = "member"; tr.dataset.parent = info.parent; }
    const th = document.createElement("th"); th.scope = "row";
    const a = document.createElement("a"); a.href = "/console/datasets/" + ds; a.textContent = ds;
    th.appendChild(a); tr.appendChild(th);
    for (const text of [info.data_id, info.workflow || "-"]) {
      const td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
    }
    grid.tHead.querySelectorAll("th").forEach((h, i) => {
      if (i < 3) return;
      const td = document.createElement("td"); td.dataset.col = h.textContent; tr.appendChild(td);
    });
    return tr;
  }

  function apply(delta) {
    const byDs = {};
    for (const tr of tbody.rows) byDs[tr.dataset.ds] = tr;
    delta.order.forEach((ds, i) => {
      let tr = byDs[ds];
      const info = delta.rows[ds];
      if (!tr) {
        if (!info) return;  // appears on the next poll with its data
        tr = newRow(ds, info);
      }
      if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] || null);
      if (info) {
        tr.cells[2].textContent = info.workflow || "-";
        const cells = tr.querySelectorAll("td[data-col]");
        cells.forEach((td, j) => paint(td, info.status[j]));
      }
      delete byDs[ds];
    });
    for (const ds in byDs) byDs[ds].remove();
    addToggles();
    document.getElementById("total").textContent = delta.total;
    for (const col in delta.counts) {
      for (const ch in LETTERS) {
        const td = document.getElementById("n-" + ch + "-" + col);
        if (td) td.textContent = delta.counts[col][ch] || "";
      }
    }
  }

  // an association that came in while the page was open gets its fold button like the served ones
  function addToggles() {
    const parents = new Set([...tbody.rows].map((tr) => tr.dataset.parent).filter(Boolean));
    for (const tr of tbody.rows) {
      if (!parents.has(tr.dataset.ds) || tr.querySelector("button.toggle")) continue;
      const b = document.createElement("button");
      b.type = "button"; b.className = "toggle"; b.textContent = "\u2212";
      b.setAttribute("aria-expanded", "true"); b.setAttribute("aria-controls", tr.id);
      b.title = "show or hide members";
      tr.cells[0].insertBefore(b, tr.cells[0].firstChild);
    }
  }

  function fresh(delta, how) {
    apply(delta);
    stamp = delta.stamp;
    grid.dataset.live = how;
    live.textContent = "live"; live.classList.remove("stale");
  }

  async function poll() {
    try {
      const r = await fetch("/console/grid.json?" + grid.dataset.query + "&since=" + stamp,
                            { credentials: "same-origin", cache: "no-store" });
      if (!r.ok) throw new Error(r.status);
      fresh(await r.json(), "poll");
    } catch (err) {
      live.textContent = "not updating (" + err.message + ")"; live.classList.add("stale");
    }
    setTimeout(poll, 1000);
  }

  // events first; a stream the server refuses (logged out, proxy) falls back to polling
  function listen() {
    const source = new EventSource("/console/grid.events?" + grid.dataset.query + "&since=" + stamp);
    source.onmessage = (ev) => fresh(JSON.parse(ev.data), "events");
    source.onerror = () => {
      if (source.readyState !== EventSource.CLOSED) return;  // the browser reconnects by itself
      source.close();
      setTimeout(poll, 1000);
    };
  }
  if (window.EventSource) listen(); else setTimeout(poll, 1000);

  tbody.addEventListener("click", (ev) => {
    const button = ev.target.closest("button.toggle");
    if (!button) return;
    const open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", String(open));
    button.textContent = open ? "−" : "+";
    const parent = button.closest("tr").dataset.ds;
    tbody.querySelectorAll('tr[data-parent="' + parent + '"]').forEach((tr) => tr.classList.toggle("hidden", !open));
  });
})();
