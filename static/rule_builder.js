// Rule builder: turns simple form rows into the segment rule JSON in the textarea.
(function () {
  "use strict";
  const box = document.getElementById("rule-builder");
  const area = document.getElementById("id_definition");
  if (!box || !area) return;
  const $ = (id) => document.getElementById(id);
  function current() {
    try {
      const rule = JSON.parse(area.value || "{}");
      if (rule.all || rule.any) return rule;
      return Object.keys(rule).length ? { all: [rule] } : { all: [] };
    } catch (e) { return { all: [] }; }
  }
  function condition() {
    const kind = $("rb-kind").value;
    const subject = $("rb-subject").value.trim();
    const raw = $("rb-value").value.trim();
    const days = parseInt($("rb-window").value, 10);
    const window = Number.isFinite(days) && days > 0 ? { from_signup_days: [0, days] } : null;
    if (kind === "event") {
      if (!subject) throw new Error("name the event");
      const node = { event: subject, min_count: parseInt(raw || "1", 10) };
      if (window) node.window = window;
      return node;
    }
    if (kind === "attribute") {
      if (!subject) throw new Error("name the attribute");
      const values = raw.split(",").map((v) => v.trim()).filter(Boolean);
      if (!values.length) throw new Error("give a value");
      return values.length > 1 ? { attribute: subject, op: "in", value: values } : { attribute: subject, op: "eq", value: values[0] };
    }
    if (kind === "revenue") {
      const amount = parseFloat(raw);
      if (!Number.isFinite(amount)) throw new Error("give an amount");
      const node = { revenue: { op: "gte", value: amount } };
      if (window) node.window = window;
      return node;
    }
    const n = parseInt(raw, 10);
    if (!Number.isFinite(n) || n <= 0) throw new Error("give a number of days");
    return { last_seen: { op: "within_days", value: n } };
  }
  $("rb-add").addEventListener("click", () => {
    let node;
    try { node = condition(); } catch (e) { alert(e.message); return; }
    const rule = current();
    const comb = $("rb-combinator").value;
    const list = rule.all || rule.any || [];
    const out = {}; out[comb] = list.concat([node]);
    area.value = JSON.stringify(out, null, 2);
  });
  $("rb-clear").addEventListener("click", () => { area.value = JSON.stringify({ all: [] }, null, 2); estimateSoon(); });
  $("rb-add").addEventListener("click", () => estimateSoon());

  // Live size estimate: the rule evaluated on a seeded sample of users (kept per dataset
  // version on the server), shown with its 95% interval; exact on a small dataset.
  const out = $("rule-estimate");
  const kind = $("id_kind");
  const dataset = $("id_dataset");
  let timer = null;
  let seq = 0;
  const fmt = (n) => Math.round(n).toLocaleString("en-US");
  function csrf() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }
  function show(text, error) {
    out.textContent = text;
    out.classList.toggle("error", !!error);
    out.dataset.state = error ? "error" : "ok";
  }
  function estimate() {
    if (!out || (kind && kind.value !== "rule")) return;
    let rule;
    try { rule = JSON.parse(area.value || "{}"); } catch (e) { show("Rule: not valid JSON (" + e.message + ")", true); return; }
    const mine = ++seq;
    out.dataset.state = "pending";
    fetch(out.dataset.url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify({ dataset: Number(dataset.value), definition: rule }),
    }).then((r) => r.json().then((body) => ({ ok: r.ok, body })))
      .then(({ ok, body }) => {
        if (mine !== seq) return; // a newer edit is on its way
        if (!ok) {
          const msg = (body.definition || body.dataset || [body.detail || "the estimate failed"])[0];
          show("Rule: " + msg, true);
          return;
        }
        if (body.exact) {
          show(fmt(body.estimate) + " users, an exact count over all " + fmt(body.population) + " users (dataset v" + body.dataset_version + ")", false);
        } else {
          show("≈ " + fmt(body.estimate) + " users (" + fmt(Math.floor(body.low)) + "–" + fmt(Math.ceil(body.high)) +
            "), from a " + fmt(body.sample) + "-user sample of " + fmt(body.population) + " (95% interval, dataset v" + body.dataset_version + ")", false);
        }
      })
      .catch(() => { if (mine === seq) show("The size estimate is unavailable (network error).", true); });
  }
  function estimateSoon() {
    clearTimeout(timer);
    timer = setTimeout(estimate, 300);
  }
  area.addEventListener("input", estimateSoon);
  if (dataset) dataset.addEventListener("change", estimateSoon);
  if (kind) kind.addEventListener("change", estimateSoon);
  estimateSoon();
})();
