// Plotly charts: segments, planner runs, the refine sweep, experiments and behaviour analyses.
// Data comes from json_script blocks rendered by the server.
(function () {
  "use strict";
  if (typeof Plotly === "undefined") return;
  const config = { responsive: true, displaylogo: false };
  const font = { family: "system-ui, sans-serif", size: 13, color: "#1d2330" };

  // Draw with the data of the json_script block `id`, when the page has one.
  function withData(id, draw) {
    const el = document.getElementById(id);
    if (el) draw(JSON.parse(el.textContent));
  }

  // Segment pages: signals, retention, trend, LTV; the comparison of segments.
  const RATES = new Set(["share", "retention_d1", "retention_d7", "retention_d30", "conversion"]);
  const LIFTS = new Set(["lift_vs_baseline_ltv_90", "lift_vs_baseline_conversion"]);

  function errorBars(items) {
    return {
      type: "data", symmetric: false, color: "#1d2330", thickness: 1.5, width: 6,
      array: items.map((s) => (s.high != null ? s.high - s.estimate : 0)),
      arrayminus: items.map((s) => (s.low != null ? s.estimate - s.low : 0)),
    };
  }

  function signalChart(el, signals) {
    const groups = [
      { title: "Money per user", items: signals.filter((s) => !RATES.has(s.name) && !LIFTS.has(s.name)), fmt: ",.2f" },
      { title: "Rates", items: signals.filter((s) => RATES.has(s.name)), fmt: ".1%" },
      { title: "Lift vs all users (ratio; 1 = same)", items: signals.filter((s) => LIFTS.has(s.name)), fmt: ".2f" },
    ].filter((g) => g.items.length);
    el.innerHTML = "";
    groups.forEach((g) => {
      const div = document.createElement("div");
      div.className = "chart-part";
      el.appendChild(div);
      const labels = g.items.map((s) => s.label);
      const traces = [{
        type: "bar", orientation: "h", name: "Segment", y: labels, x: g.items.map((s) => s.estimate),
        error_x: errorBars(g.items), marker: { color: "#1f5fbf" },
        hovertemplate: "%{y}: %{x:" + g.fmt + "}<extra>segment</extra>",
      }];
      if (g.items.some((s) => s.baseline != null) && !g.title.startsWith("Lift")) {
        traces.push({
          type: "bar", orientation: "h", name: "All users", y: labels, x: g.items.map((s) => s.baseline),
          marker: { color: "#9aa3b2" }, hovertemplate: "%{y}: %{x:" + g.fmt + "}<extra>all users</extra>",
        });
      }
      Plotly.newPlot(div, traces, {
        title: { text: g.title, font: { size: 14 } }, barmode: "group", font,
        margin: { l: 260, r: 20, t: 40, b: 40 }, height: 80 + 48 * g.items.length * traces.length,
        xaxis: { tickformat: g.fmt, zeroline: true, title: { text: g.title.startsWith("Lift") ? "ratio" : (g.fmt.includes("%") ? "share of users" : "money") } },
        yaxis: { automargin: true, autorange: "reversed" }, legend: { orientation: "h", y: -0.25 },
      }, config);
    });
  }

  function retentionChart(el, table) {
    if (!table || !table.rows || !table.rows.length) { el.textContent = "No cohort data."; return; }
    const cols = table.columns;
    const cohortIdx = 0;
    const sizeIdx = cols.findIndex((c) => c === "size");
    const periodCols = cols.map((c, i) => [c, i]).filter(([c, i]) => i !== cohortIdx && i !== sizeIdx);
    const y = table.rows.map((r) => String(r[cohortIdx]).slice(0, 10) + (sizeIdx >= 0 && r[sizeIdx] != null ? " (n=" + r[sizeIdx] + ")" : ""));
    const z = table.rows.map((r) => periodCols.map(([c, i]) => r[i]));
    // Period 0 is 100% by definition; scale the colours to the later periods so they read.
    const later = z.flatMap((row) => row.slice(1)).filter((v) => v != null);
    const zmax = later.length ? Math.min(1, Math.max(...later) * 1.1) : 1;
    Plotly.newPlot(el, [{
      type: "heatmap", x: periodCols.map(([c]) => c), y, z, colorscale: "Blues", reversescale: true, zmin: 0, zmax,
      text: z.map((row) => row.map((v) => (v == null ? "" : Math.round(v * 100) + "%"))), texttemplate: "%{text}", textfont: { size: 10 },
      colorbar: { title: { text: "retained" }, tickformat: ".0%" },
      hovertemplate: "cohort %{y}<br>period %{x}: %{z:.1%}<extra></extra>",
    }], {
      font, margin: { l: 170, r: 20, t: 20, b: 60 }, height: Math.max(260, 60 + 26 * y.length),
      xaxis: { title: { text: "months since signup" }, type: "category" },
      yaxis: { title: { text: "signup cohort" }, autorange: "reversed", type: "category" },
    }, config);
  }

  function trendChart(el, trend) {
    if (!trend || trend.length < 2) { el.textContent = "One refresh so far: the trend appears after the next refresh."; return; }
    Plotly.newPlot(el, [{
      type: "scatter", mode: "lines+markers", x: trend.map((t) => t.at), y: trend.map((t) => t.ltv_90),
      name: "LTV 90 days", line: { color: "#1f5fbf" },
    }], { font, height: 260, margin: { l: 70, r: 20, t: 20, b: 50 },
      xaxis: { title: { text: "refresh" } }, yaxis: { title: { text: "LTV at 90 days" } } }, config);
  }

  function ltvChart(el, signals) {
    const by = Object.fromEntries(signals.map((s) => [s.name, s]));
    const days = [30, 90, 365].filter((d) => by["ltv_" + d] && by["ltv_" + d].estimate != null);
    if (!days.length) { el.textContent = "No user has 30 days of history yet."; return; }
    const seg = days.map((d) => by["ltv_" + d]);
    const traces = [
      { type: "scatter", mode: "lines+markers", name: "segment (historical)", x: [0, ...days], y: [0, ...seg.map((s) => s.estimate)],
        error_y: { type: "data", symmetric: false, array: [0, ...seg.map((s) => (s.high != null ? s.high - s.estimate : 0))],
          arrayminus: [0, ...seg.map((s) => (s.low != null ? s.estimate - s.low : 0))] }, line: { color: "#1f5fbf" } },
      { type: "scatter", mode: "lines+markers", name: "all users", x: [0, ...days], y: [0, ...seg.map((s) => s.baseline)],
        line: { color: "#9aa3b2", dash: "dot" } },
    ];
    const clv = by.predicted_clv;
    if (clv && clv.estimate != null) {
      traces.push({ type: "scatter", mode: "markers", name: "predicted CLV, next 365 days", x: [365], y: [clv.estimate],
        marker: { color: "#b3261e", size: 11, symbol: "diamond" },
        error_y: { type: "data", symmetric: false, array: [clv.high - clv.estimate], arrayminus: [clv.estimate - clv.low] } });
    }
    Plotly.newPlot(el, traces, { font, height: 300, margin: { l: 70, r: 20, t: 20, b: 60 },
      xaxis: { title: { text: "days since signup" } }, yaxis: { title: { text: "revenue per user" } },
      legend: { orientation: "h", y: -0.3 } }, config);
  }

  // Segment comparison as small multiples: one panel per signal, each with its own y axis
  // titled with its unit (money per user, share of users), so no series hides another.
  function compareSmallMultiples(el, data) {
    const sigs = data.signals || [];
    if (!sigs.length) { el.textContent = "No signal to compare yet: refresh the segments."; return; }
    const cols = sigs.length > 1 && el.clientWidth > 640 ? 2 : 1;
    const rows = Math.ceil(sigs.length / cols);
    const colors = ["#1f5fbf", "#b3261e", "#2e7d32", "#8a4fbf", "#a86500", "#00838f"];
    const layout = {
      font, height: 80 + 300 * rows, showlegend: false,
      margin: { l: 80, r: 20, t: 30, b: 100 },
      grid: { rows, columns: cols, pattern: "independent", xgap: 0.18, ygap: 0.45 },
    };
    const traces = sigs.map((sig, i) => {
      const n = i === 0 ? "" : String(i + 1);
      const rate = RATES.has(sig.name);
      const unit = sig.unit || (rate ? "share of users" : "money per user");
      // Long signal names wrap (a narrow screen shows one panel per row).
      const words = sig.label.split(" ");
      const lines = [""];
      words.forEach((w) => {
        if (lines[lines.length - 1] && (lines[lines.length - 1] + " " + w).length > 28) lines.push(w);
        else lines[lines.length - 1] = (lines[lines.length - 1] + " " + w).trim();
      });
      const top = Math.max(0, ...sig.values.map((v) => (v ? (v.high != null ? v.high : v.estimate) || 0 : 0)));
      layout["xaxis" + n] = { title: { text: lines.join("<br>") }, automargin: true };
      layout["yaxis" + n] = { title: { text: unit + (rate ? " (%)" : "") }, rangemode: "tozero",
        tickformat: rate ? ".0%" : ",.2f", zeroline: true, automargin: true };
      // A rate with nothing above zero still reads on a 0-100% scale (not Plotly's 0-400%).
      if (rate && top <= 0) layout["yaxis" + n].range = [0, 1];
      return {
        type: "bar", name: sig.label, meta: { unit, signal: sig.name }, x: data.segments,
        y: sig.values.map((v) => (v && v.estimate != null ? v.estimate : null)),
        xaxis: "x" + n, yaxis: "y" + n, marker: { color: colors[i % colors.length] },
        error_y: { type: "data", symmetric: false, color: "#1d2330",
          array: sig.values.map((v) => (v && v.high != null ? v.high - v.estimate : 0)),
          arrayminus: sig.values.map((v) => (v && v.low != null ? v.estimate - v.low : 0)) },
        hovertemplate: "%{x}: %{y:" + (rate ? ".1%" : ",.2f") + "}<extra>" + sig.label + "</extra>",
      };
    });
    Plotly.newPlot(el, traces, layout, config);
  }

  withData("chart-data", (data) => {
    const s = document.getElementById("chart-signals");
    if (s) signalChart(s, data.signals || []);
    const r = document.getElementById("chart-retention");
    if (r) retentionChart(r, data.retention);
    const t = document.getElementById("chart-trend");
    if (t) trendChart(t, data.trend);
    const l = document.getElementById("chart-ltv");
    if (l) ltvChart(l, data.signals || []);
  });
  withData("compare-data", (data) => {
    const el = document.getElementById("chart-compare");
    if (el) compareSmallMultiples(el, data);
  });

  // Planner: efficient frontier and robust inclusion probabilities.
  withData("run-data", (data) => {
    const f = document.getElementById("chart-frontier");
    if (f) {
      const pts = (data.frontier || []).filter((p) => p.value != null);
      if (!pts.length) { f.textContent = "No frontier computed for this run."; }
      else {
        Plotly.newPlot(f, [
          { type: "scatter", mode: "lines+markers", name: "best value at budget", x: pts.map((p) => p.budget), y: pts.map((p) => p.value),
            line: { color: "#1f5fbf", shape: "hv" }, hovertemplate: "budget %{x:,.0f}<br>value %{y:,.0f}<extra></extra>" },
          { type: "scatter", mode: "markers", name: "this scenario", x: [data.budget], y: [data.objective],
            marker: { color: "#b3261e", size: 12, symbol: "diamond" } },
        ], { font, height: 340, margin: { l: 80, r: 20, t: 20, b: 60 },
          xaxis: { title: { text: "budget" }, tickformat: ",.0f" }, yaxis: { title: { text: "risk-adjusted value" }, tickformat: ",.0f" },
          legend: { orientation: "h", y: -0.25 } }, config);
      }
    }
    const r = document.getElementById("chart-robust");
    if (r && data.robust && data.robust.length) {
      const rows = data.robust.slice().sort((a, b) => a.p - b.p);
      Plotly.newPlot(r, [{ type: "bar", orientation: "h", x: rows.map((x) => x.p), y: rows.map((x) => x.title),
        marker: { color: "#1f5fbf" }, hovertemplate: "%{y}: %{x:.0%}<extra></extra>" }],
        { font, height: 80 + 26 * rows.length, margin: { l: 260, r: 20, t: 10, b: 50 },
          xaxis: { title: { text: "probability of being in the optimal portfolio" }, tickformat: ".0%", range: [0, 1] },
          yaxis: { automargin: true } }, config);
    }
    // Value of information: EVPPI per hypothesis and EVSI per experiment, +-2 Monte Carlo SE.
    const v = document.getElementById("chart-voi");
    if (v && data.voi && data.voi.length) {
      const rows = data.voi.slice().reverse();
      Plotly.newPlot(v, [{ type: "bar", orientation: "h", x: rows.map((x) => x.value), y: rows.map((x) => x.label),
        marker: { color: rows.map((x) => (x.kind === "EVSI" ? "#b3261e" : "#1f5fbf")) },
        error_x: { type: "data", array: rows.map((x) => 2 * x.se), color: "#1d2330", thickness: 1.5, width: 5 },
        hovertemplate: "%{y}: %{x:,.0f}<extra></extra>" }],
        { font, height: 90 + 28 * rows.length, margin: { l: 320, r: 20, t: 10, b: 50 },
          xaxis: { title: { text: "expected value of information (value units; bars: ±2 Monte Carlo SE)" }, tickformat: ",.0f", rangemode: "tozero" },
          yaxis: { automargin: true } }, config);
    }
  });

  // Segment refine sweep: size and value per threshold / window length.
  const form = document.getElementById("sweep-form");
  if (form) {
    const csrf = () => (document.cookie.match(/csrftoken=([^;]+)/) || [])[1] || "";
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const err = document.getElementById("sweep-error");
      err.hidden = true;
      const kind = form.querySelector("#sweep-kind").value;
      const body = { path: form.querySelector("#sweep-path").value };
      if (kind === "thresholds") body.thresholds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
      else body.window_days = [3, 5, 7, 10, 14, 21, 30];
      fetch(form.dataset.url, { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() }, body: JSON.stringify(body) })
        .then((r) => r.json().then((j) => ({ ok: r.ok, j })))
        .then(({ ok, j }) => {
          if (!ok) { err.textContent = JSON.stringify(j); err.hidden = false; return; }
          const rows = j.rows;
          const x = rows.map((r) => (r.threshold != null ? r.threshold : r.days));
          Plotly.newPlot("chart-sweep", [
            { type: "bar", name: "members", x, y: rows.map((r) => r.size), marker: { color: "#9aa3b2" } },
            { type: "scatter", mode: "lines+markers", name: "90-day revenue per member", x,
              y: rows.map((r) => r.metric), yaxis: "y2", line: { color: "#1f5fbf" } },
          ], { font, height: 320, margin: { l: 70, r: 70, t: 20, b: 60 },
            xaxis: { title: { text: kind === "thresholds" ? "at least k events" : "window (days after signup)" } },
            yaxis: { title: { text: "members" } },
            yaxis2: { title: { text: "revenue per member" }, overlaying: "y", side: "right" },
            legend: { orientation: "h", y: -0.3 } }, config);
        })
        .catch((e) => { err.textContent = String(e); err.hidden = false; });
    });
  }

  // Experiments: effect intervals (forest plot) and quasi-experiment series with the launch.
  withData("experiment-data", (data) => {
    const forest = document.getElementById("chart-forest");
    if (forest && data.forest) {
      const rows = data.forest.filter((r) => r.estimate != null);
      if (!rows.length) { forest.textContent = "No estimate to plot (insufficient data)."; }
      else {
        const rel = rows.every((r) => r.relative);
        // Narrow screens: the labels go above each interval instead of on a wide left axis.
        const narrow = forest.clientWidth < 600;
        Plotly.newPlot(forest, [{
          type: "scatter", mode: "markers",
          y: rows.map((r) => r.label), x: rows.map((r) => r.estimate),
          marker: { size: 10, color: rows.map((r) => (r.significant ? "#1f5fbf" : "#9aa3b2")) },
          error_x: { type: "data", symmetric: false, color: "#1d2330", thickness: 1.5, width: 6,
            array: rows.map((r) => (r.high != null ? r.high - r.estimate : 0)),
            arrayminus: rows.map((r) => (r.low != null ? r.estimate - r.low : 0)) },
          hovertemplate: "%{y}<br>effect %{x:" + (rel ? ".2%" : ".4f") + "}<extra></extra>",
        }], { font, height: 90 + (narrow ? 60 : 44) * rows.length, margin: { l: narrow ? 10 : 320, r: narrow ? 10 : 30, t: 20, b: 60 },
          xaxis: { title: { text: narrow ? (rel ? "relative effect (95% CI)" : "absolute effect (95% CI)") : (rel ? "relative effect vs control (95% CI); blue = significant after adjustment" : "absolute effect vs control (95% CI)") },
            tickformat: rel ? ".0%" : ".3f", zeroline: true, zerolinewidth: 2, zerolinecolor: "#b3261e" },
          yaxis: { automargin: !narrow, autorange: "reversed", showticklabels: !narrow }, showlegend: false,
          annotations: narrow ? rows.map((r) => ({ xref: "paper", x: 0, y: r.label, yshift: 16, xanchor: "left",
            text: r.label, showarrow: false, font: { size: 11 } })) : [] }, config);
      }
    }
    // A/B over time: the cumulative relative lift with its interval band, and exposures.
    const tl = data.timeline;
    const cum = document.getElementById("chart-cumulative");
    if (cum && tl) {
      const colors = ["#1f5fbf", "#c26a00", "#2e7d32", "#7b1fa2"];
      const traces = [];
      Object.keys(tl.effects).forEach((arm, i) => {
        const pts = tl.effects[arm].filter((p) => p.relative != null && p.relative_ci);
        const c = colors[i % colors.length];
        traces.push({ type: "scatter", mode: "lines", x: pts.map((p) => p.date).concat(pts.map((p) => p.date).reverse()),
          y: pts.map((p) => p.relative_ci[1]).concat(pts.map((p) => p.relative_ci[0]).reverse()),
          fill: "toself", fillcolor: c + "22", line: { width: 0 }, hoverinfo: "skip", name: arm + " interval", showlegend: false });
        traces.push({ type: "scatter", mode: "lines+markers", name: tl.metric + ": " + arm + " vs " + (tl.control || "control"), x: pts.map((p) => p.date),
          y: pts.map((p) => p.relative), line: { color: c }, marker: { size: 5 },
          customdata: pts.map((p) => [p.relative_ci[0], p.relative_ci[1], p.n_control, p.n_arm]),
          hovertemplate: "%{x}<br>lift %{y:+.1%} [%{customdata[0]:+.1%}, %{customdata[1]:+.1%}]<br>n %{customdata[2]} / %{customdata[3]}<extra>" + arm + "</extra>" });
      });
      if (!traces.length) { cum.textContent = "Not enough users yet for an estimate."; }
      else {
        Plotly.newPlot(cum, traces, { font, height: 340, margin: { l: 70, r: 20, t: 20, b: 70 },
          xaxis: { title: { text: "date (data through the end of each " + tl.unit + ")" }, type: "date" },
          yaxis: { title: { text: "relative lift (band: interval)" }, tickformat: "+.0%",
            zeroline: true, zerolinewidth: 2, zerolinecolor: "#b3261e" },
          legend: { orientation: "h", y: -0.3 } }, config);
      }
    }
    const exp = document.getElementById("chart-exposures");
    if (exp && tl) {
      const colors = ["#9aa3b2", "#1f5fbf", "#c26a00", "#2e7d32", "#7b1fa2"];
      const traces = Object.keys(tl.exposures).map((arm, i) => ({ type: "scatter", mode: "lines+markers", name: arm,
        x: tl.dates, y: tl.exposures[arm], line: { color: colors[i % colors.length] }, marker: { size: 5 },
        hovertemplate: "%{x}: %{y:,} users<extra>" + arm + "</extra>" }));
      Plotly.newPlot(exp, traces, { font, height: 300, margin: { l: 70, r: 20, t: 20, b: 70 },
        xaxis: { title: { text: "date" }, type: "date" },
        yaxis: { title: { text: "users assigned (cumulative)" }, rangemode: "tozero", tickformat: "," },
        legend: { orientation: "h", y: -0.3 } }, config);
    }
    const series = document.getElementById("chart-series");
    if (series && data.series && data.series.length) {
      const s = data.series;
      const traces = [];
      if (s[0].treated_mean !== undefined) {
        traces.push({ type: "scatter", mode: "lines+markers", name: "treated", x: s.map((p) => p.period), y: s.map((p) => p.treated_mean), line: { color: "#1f5fbf" } });
        traces.push({ type: "scatter", mode: "lines+markers", name: "control", x: s.map((p) => p.period), y: s.map((p) => p.control_mean), line: { color: "#9aa3b2" } });
      } else {
        traces.push({ type: "scatter", mode: "lines+markers", name: "segment", x: s.map((p) => p.period), y: s.map((p) => p.value), line: { color: "#1f5fbf" } });
      }
      Plotly.newPlot(series, traces, { font, height: 340, margin: { l: 70, r: 20, t: 20, b: 60 },
        xaxis: { title: { text: "period relative to launch (0 = first period after)" }, dtick: 1 },
        yaxis: { title: { text: "metric per user" } },
        shapes: [{ type: "line", x0: -0.5, x1: -0.5, yref: "paper", y0: 0, y1: 1, line: { color: "#b3261e", dash: "dash" } }],
        annotations: [{ x: -0.5, yref: "paper", y: 1, text: "launch", showarrow: false, xanchor: "left", font: { color: "#b3261e" } }],
        legend: { orientation: "h", y: -0.25 } }, config);
    }
  });

  // Funnel conversion by entry week: the rate with its interval (top), and the users per
  // week split into converted / not converted / still in window (bottom, stacked).
  function funnelWeeksChart(el, r) {
    const w = r.over_time;
    if (!w.length) { el.textContent = "Nobody entered the funnel."; return; }
    const x = w.map((row) => row.week);
    const rated = w.filter((row) => row.rate.estimate != null);
    Plotly.newPlot(el, [
      { type: "scatter", mode: "lines+markers", name: "conversion rate (95% CI)", x: rated.map((row) => row.week),
        y: rated.map((row) => row.rate.estimate), error_y: errorBars(rated.map((row) => row.rate)), line: { color: "#1f5fbf" },
        hovertemplate: "week of %{x}: %{y:.1%}<extra>rate</extra>" },
      { type: "bar", name: "converted", x, y: w.map((row) => row.converted), yaxis: "y2", marker: { color: "#1f5fbf" } },
      { type: "bar", name: "not converted", x, y: w.map((row) => row.not_converted), yaxis: "y2", marker: { color: "#b3261e" } },
      { type: "bar", name: "still in window (not a failure)", x, y: w.map((row) => row.in_window), yaxis: "y2", marker: { color: "#9aa3b2" } },
    ], { font, barmode: "stack", height: 520, margin: { l: 70, r: 20, t: 30, b: 150 },
      xaxis: { title: { text: "entry week (Monday, UTC)", standoff: 8 }, type: "category", anchor: "y2", automargin: true },
      yaxis: { title: { text: "conversion rate" }, tickformat: ".0%", range: [0, 1.05], domain: [0.58, 1] },
      yaxis2: { title: { text: "users" }, domain: [0, 0.45] },
      annotations: [{ xref: "paper", yref: "paper", x: 0, y: 1.07, xanchor: "left", showarrow: false, font: { size: 11 },
        text: "Still in window: the " + r.window_days + "-day window had not closed when the data ends; left out of the rate" }],
      legend: { orientation: "h", x: 0, y: -0.42, yanchor: "top" } }, config);
  }

  // Time to convert: users per duration bin, one series per step transition and the whole funnel.
  function timeToConvertChart(el, r) {
    const series = r.overall.steps.slice(1).map((st) => ({ name: (st.index - 1) + " → " + st.index + ": " + st.label, t: st.time_to_convert }));
    if (r.overall.time_to_convert) series.push({ name: "whole funnel (1 → " + r.steps.length + ")", t: r.overall.time_to_convert });
    const shown = series.filter((s) => s.t && s.t.n > 0 && s.t.bins);
    if (!shown.length) { el.textContent = "Nobody converted: no times to show."; return; }
    Plotly.newPlot(el, shown.map((s, i) => ({
      type: "bar", name: s.name + " (n=" + s.t.n + ")", x: s.t.bins.map((b) => b.label), y: s.t.bins.map((b) => b.users),
      marker: i === shown.length - 1 && r.overall.time_to_convert ? { color: "#1d2330" } : {},
      hovertemplate: "%{x}: %{y} users<extra>" + s.name + "</extra>",
    })), { font, barmode: "group", height: 380, margin: { l: 70, r: 20, t: 20, b: 90 },
      xaxis: { title: { text: "time to convert (from the previous step; whole funnel: from step 1)" }, type: "category" },
      yaxis: { title: { text: "users" }, rangemode: "tozero" },
      legend: { orientation: "h", y: -0.3 } }, config);
  }

  // Behaviour analyses: funnel bars, paths Sankey, retention heatmap.
  withData("analysis-data", (r) => {
    if (!r) return;
    const f = document.getElementById("chart-funnel");
    if (f && r.overall) {
      const series = [r.overall].concat(r.breakdown || []);
      const traces = series.map((s, i) => ({
        type: "bar", name: i === 0 ? "all users" : s.label,
        x: s.steps.map((st) => st.index + ". " + st.label),
        y: s.steps.map((st) => st.conversion_from_start.estimate),
        error_y: { type: "data", symmetric: false,
          array: s.steps.map((st) => st.conversion_from_start.high - st.conversion_from_start.estimate),
          arrayminus: s.steps.map((st) => st.conversion_from_start.estimate - st.conversion_from_start.low) },
        hovertemplate: "%{x}: %{y:.1%}<extra>" + (i === 0 ? "all users" : s.label) + "</extra>",
      }));
      Plotly.newPlot(f, traces, { font, barmode: "group", height: 380, margin: { l: 70, r: 20, t: 20, b: 90 },
        xaxis: { title: { text: "funnel step" } },
        yaxis: { title: { text: "reached (share of step 1, 95% CI)" }, tickformat: ".0%", range: [0, 1.05] },
        legend: { orientation: "h", y: -0.3 } }, config);
    }
    const s = document.getElementById("chart-sankey");
    const sk = r.sankey;
    if (s && sk) {
      const nodes = sk.nodes, links = sk.links;
      if (!links.length) { s.textContent = sk.nodes.length ? "One-step paths only: nothing flows between steps; the table lists them." : "No paths."; }
      else {
        // Users, each once (the path of their first anchored session); "(end)" and
        // "(session start)" nodes hold the paths that stop early, so one-step paths show.
        const marker = (n) => n.event === "(end)" || n.event === "(session start)";
        const cov = sk.coverage;
        Plotly.newPlot(s, [{ type: "sankey", arrangement: "snap",
          node: { label: nodes.map((n) => (n.event === "(end)" ? "(end after step " + n.step + ")" : marker(n) ? n.event : (n.step + 1) + ". " + n.event)), pad: 14, thickness: 14,
            color: nodes.map((n) => (marker(n) ? "#9aa3b2" : "#1f5fbf")) },
          link: { source: links.map((l) => l.source), target: links.map((l) => l.target), value: links.map((l) => l.value), color: "rgba(31,95,191,0.25)",
            hovertemplate: "%{source.label} → %{target.label}: %{value} users<extra></extra>" },
        }], { font, height: 460, margin: { l: 20, r: 20, t: 40, b: 20 },
          title: { text: cov ? "Users by path (drawn: " + cov.drawn_users + " of " + cov.total_users + ")" : "Users by path", font: { size: 14 } } }, config);
      }
    }
    const fw = document.getElementById("chart-funnel-weeks");
    if (fw && r.over_time) funnelWeeksChart(fw, r);
    const ttc = document.getElementById("chart-ttc");
    if (ttc && r.overall) timeToConvertChart(ttc, r);
    const h = document.getElementById("chart-heatmap");
    if (h && r.rows) {
      const rows = r.rows;
      const y = rows.map((row) => row.cohort + " (n=" + row.size + ")");
      const z = rows.map((row) => row.shares.map((v, k) => (k === 0 ? null : v)));
      if (r.average && r.average.length) {
        y.unshift("average (size-weighted)");
        z.unshift(r.average.map((v, k) => (k === 0 ? null : v)));
      }
      // Columns say what they count ("day 7", "days 7–13", "week 2+"); older results have none.
      const x = r.labels && r.labels.length ? r.labels : r.periods.map((p) => r.period + " " + p);
      const rolling = r.period_kind === "rolling";
      const text = z.map((row) => row.map((v) => (v == null ? "" : (v * 100).toFixed(1) + "%")));
      const xTitle = rolling
        ? (r.period_days === 1 ? "days" : r.period_days + "-day periods") + " since each user's " + (r.start_event || "start") + " (0 blank: it holds the start)"
        : "calendar " + r.period + "s since the cohort's " + r.period + " (0 = the cohort itself, blank)";
      Plotly.newPlot(h, [{ type: "heatmap", x, y, z, text, texttemplate: "%{text}", textfont: { size: 10 },
        colorscale: "Blues", reversescale: true, zmin: 0,
        hovertemplate: "%{y}, %{x}: %{z:.1%}<extra></extra>", colorbar: { title: { text: "returned (share)" }, tickformat: ".0%" } }],
        { font, height: Math.max(320, 60 + 22 * y.length), margin: { l: 170, r: 20, t: 40, b: 80 },
          title: { text: r.definition ? r.definition.split(" (")[0] : "", font: { size: 13 } },
          xaxis: { title: { text: xTitle }, type: "category" },
          yaxis: { title: { text: (rolling ? "cohort (users starting that " : "cohort (") + r.period + ")" }, autorange: "reversed", automargin: true } }, config);
    }
  });
})();
