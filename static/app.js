// Live job progress bars and the upload form. No framework: plain fetch/XHR against /api/v1/.
(function () {
  "use strict";
  function csrf() {
    const m = document.cookie.match(/csrftoken=([^;]+)/);
    if (m) return m[1];
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }
  function render(el, job) {
    el.dataset.state = job.state;
    const bar = el.querySelector(".bar");
    bar.setAttribute("aria-valuenow", job.progress);
    bar.querySelector("span").style.width = job.progress + "%";
    const state = el.querySelector(".state");
    state.textContent = job.state;
    state.className = "state state-" + job.state;
    el.querySelector(".job-text").childNodes[1].textContent = " " + job.progress + "% ";
    el.querySelector(".job-message").textContent = job.message || "";
  }
  // A finished job's card updates the page it sits on: when the card (or a parent) names a
  // region (data-job-for="<id>"), that region is fetched again and replaced in place (the
  // card inside it goes with it); otherwise the page reloads.
  function replaceRegion(region) {
    return fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then((r) => { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
      .then((html) => {
        const fresh = new DOMParser().parseFromString(html, "text/html").getElementById(region.id);
        if (!fresh) throw new Error("region " + region.id + " is gone");
        const node = document.importNode(fresh, true);
        region.replaceWith(node);
        node.dataset.updatedAt = String(Date.now());
        watch(node);
        document.dispatchEvent(new CustomEvent("regionreplaced", { detail: node }));
      });
  }
  function finished(el) {
    const holder = el.closest("[data-job-for]");
    const region = holder ? document.getElementById(holder.dataset.jobFor) : null;
    if (region && region.contains(el)) {
      replaceRegion(region).catch(() => window.location.reload());
    } else {
      setTimeout(() => window.location.reload(), 400);
    }
  }
  function poll(el) {
    const id = el.dataset.jobId;
    fetch("/api/v1/jobs/" + id + "/", { credentials: "same-origin", cache: "no-store" })
      .then((r) => r.json())
      .then((job) => {
        render(el, job);
        if (job.state === "succeeded" || job.state === "failed") {
          finished(el);
        } else {
          setTimeout(() => poll(el), 800);
        }
      })
      .catch(() => setTimeout(() => poll(el), 2000));
  }
  function watch(root) {
    root.querySelectorAll(".job").forEach((el) => {
      if (el.dataset.state === "queued" || el.dataset.state === "running") poll(el);
    });
  }
  watch(document);

  const form = document.getElementById("import-form");
  if (form) {
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const err = document.getElementById("import-error");
      err.hidden = true;
      const data = new FormData(form);
      data.append("dataset", form.dataset.dataset);
      const events = form.querySelector("#id_events").files[0];
      const users = form.querySelector("#id_users").files[0];
      if (!events) data.delete("events");
      if (!users) data.delete("users");
      if (!events && !users) { err.textContent = "Choose an events file, a users file or both."; err.hidden = false; return; }
      const max = Number(form.dataset.max);
      for (const f of [events, users]) {
        if (f && f.size > max) { err.textContent = f.name + " is larger than the limit of " + max.toLocaleString() + " bytes."; err.hidden = false; return; }
      }
      if (!data.get("mapping")) data.delete("mapping");
      const bar = form.querySelector(".upload-bar");
      bar.hidden = false;
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/v1/imports/");
      xhr.setRequestHeader("X-CSRFToken", csrf());
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) {
          const pct = Math.round((100 * e.loaded) / e.total);
          bar.querySelector("span").style.width = pct + "%";
          bar.setAttribute("aria-valuenow", pct);
        }
      };
      xhr.onload = () => {
        let body = {};
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = {}; }
        if (xhr.status === 200 || xhr.status === 202) {
          window.location = "/w/" + form.dataset.workspace + "/imports/" + body.id + "/";
        } else {
          const e = body.error || body;
          err.textContent = e.message ? e.message + (e.where ? " (" + e.where + ")" : "") : JSON.stringify(e);
          err.hidden = false;
        }
      };
      xhr.onerror = () => { err.textContent = "The upload failed: network error."; err.hidden = false; };
      xhr.send(data);
    });
  }
})();

// Sortable tables: every table in the page with a header row and more than one body row.
// Click (or Enter/Space on) a column header to sort by it; again to reverse. Numbers sort as
// numbers (thousands separators, %, currency and a trailing interval "[a, b]" are ignored).
(function () {
  "use strict";
  function key(cell) {
    const text = (cell ? cell.textContent : "").trim();
    const head = text.split("[")[0].replace(/[,%$€£▲▼\s]/g, "").replace(/^#/, "");
    const n = parseFloat(head);
    return (head !== "" && !isNaN(n) && /^[-+]?[0-9.]+(e[-+]?[0-9]+)?/i.test(head)) ? { n } : { s: text.toLowerCase() };
  }
  function compare(a, b) {
    if (a.n !== undefined && b.n !== undefined) return a.n - b.n;
    if (a.n !== undefined) return -1;
    if (b.n !== undefined) return 1;
    return a.s < b.s ? -1 : a.s > b.s ? 1 : 0;
  }
  function init(tables) { tables.forEach((table) => {
    const head = table.tHead, body = table.tBodies[0];
    if (!head || !body || body.rows.length < 2 || table.classList.contains("no-sort")) return;
    const cells = Array.from(head.rows[head.rows.length - 1].cells);
    cells.forEach((th, col) => {
      if (!th.textContent.trim()) return;
      th.tabIndex = 0;
      th.classList.add("sortable");
      th.title = "Sort by " + th.textContent.trim();
      const sort = () => {
        const asc = th.getAttribute("aria-sort") !== "ascending";
        cells.forEach((c) => c.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        const rows = Array.from(body.rows);
        const keyed = rows.map((r, i) => ({ r, i, k: key(r.cells[col]) }));
        keyed.sort((x, y) => (asc ? compare(x.k, y.k) : compare(y.k, x.k)) || x.i - y.i);
        keyed.forEach(({ r }) => body.appendChild(r));
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
    });
  }); }
  init(document.querySelectorAll("main table"));
  // A region a finished job card replaced (see above) brings new tables: sortable too.
  document.addEventListener("regionreplaced", (e) => init(e.detail.querySelectorAll("table")));
})();
// Wide tables scroll sideways inside their card (390 px phones): every table in <main> sits
// in a .scroll box (added here when the template has none), and that box sits in a
// .scroll-cue frame that fades the edge while more of the table is to the right (or left).
(function () {
  "use strict";
  function update(box) {
    const frame = box.parentElement;
    const more = box.scrollWidth - box.clientWidth - box.scrollLeft > 1;
    frame.classList.toggle("more-right", more);
    frame.classList.toggle("more-left", box.scrollLeft > 1);
  }
  function frame(box) {
    if (box.parentElement && box.parentElement.classList.contains("scroll-cue")) return;
    const cue = document.createElement("div");
    cue.className = "scroll-cue";
    box.parentNode.insertBefore(cue, box);
    cue.appendChild(box);
    box.addEventListener("scroll", () => update(box), { passive: true });
    update(box);
  }
  function wrapTables(root) {
    root.querySelectorAll("main table").forEach((table) => {
      if (table.closest(".scroll")) return;
      const box = document.createElement("div");
      box.className = "scroll";
      table.parentNode.insertBefore(box, table);
      box.appendChild(table);
    });
    root.querySelectorAll("main .scroll").forEach(frame);
  }
  window.SegmentPlanner = Object.assign(window.SegmentPlanner || {}, { wrapTables });
  wrapTables(document);
  let pending = 0;
  window.addEventListener("resize", () => {
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(() => document.querySelectorAll(".scroll-cue > .scroll").forEach(update));
  });
})();
