// Trend lines (a trends analysis's page) and the insights dashboard's charts.
// Data comes from json_script blocks rendered by the server.
(function () {
  "use strict";
  if (typeof Plotly === "undefined") return;
  const config = { responsive: true, displaylogo: false };
  const font = { family: "system-ui, sans-serif", size: 13, color: "#1d2330" };
  const COLORS = ["#1f5fbf", "#c2571a", "#2e7d4f", "#8a3ffc", "#b3261e", "#0f7b8a", "#9a6b00", "#5b6473", "#d12771", "#4e5bd1"];
  const UNITS = { count: "events", unique_users: "users", sum_revenue: "revenue" };

  function withData(id, draw) {
    const el = document.getElementById(id);
    if (el) draw(JSON.parse(el.textContent));
  }

  // One line per series (or per breakdown group of each series); the previous period dashed in
  // the same colour; a formula on its own axis at the right.
  // Colours: one per breakdown group (the same group has the same colour in every series), or one
  // per series without a breakdown; series told apart by their marker; previous period dashed.
  const DASHES = ["dash", "dot", "dashdot", "longdash"];
  const SYMBOLS = ["circle", "square", "diamond", "triangle-up", "x", "star", "cross", "hexagon"];
  function trendChart(el, r) {
    const traces = [];
    const grouped = !!(r.breakdown && r.breakdown.groups.length);
    r.series.forEach((s, k) => {
      const lines = grouped
        ? s.breakdown.map((g, j) => ({ name: s.letter + " · " + g.label, y: g.values, color: COLORS[j % COLORS.length] }))
        : [{ name: s.label, y: s.values, color: COLORS[k % COLORS.length] }];
      lines.forEach((line) => {
        traces.push({ type: "scatter", mode: "lines+markers", name: line.name, x: r.buckets, y: line.y,
          line: { color: line.color }, marker: { size: 6, symbol: SYMBOLS[k % SYMBOLS.length] },
          hovertemplate: "%{x}: %{y:,}<extra>" + line.name + "</extra>" });
      });
      if (s.previous) {
        const color = grouped ? "#5b6473" : COLORS[k % COLORS.length];
        traces.push({ type: "scatter", mode: "lines", name: s.letter + " previous period" + (grouped ? " (all)" : ""),
          x: r.buckets, y: s.previous, line: { color, dash: DASHES[k % DASHES.length], width: 1.5 },
          hovertemplate: "%{x} − " + r.previous.shift_days + " days: %{y:,}<extra>" + s.letter + " previous</extra>" });
      }
    });
    const f = r.formula;
    if (f) {
      traces.push({ type: "scatter", mode: "lines+markers", name: "formula " + f.expression, x: r.buckets, y: f.values, yaxis: "y2",
        line: { color: "#1d2330", width: 3 }, connectgaps: false,
        hovertemplate: "%{x}: %{y:,.4f}<extra>" + f.expression + "</extra>" });
      if (f.previous) {
        traces.push({ type: "scatter", mode: "lines", name: "formula previous period", x: r.buckets, y: f.previous, yaxis: "y2",
          line: { color: "#1d2330", dash: "longdashdot", width: 1.5 }, connectgaps: false });
      }
    }
    const units = Array.from(new Set(r.series.map((s) => UNITS[s.measure])));
    const layout = { font, height: 400, margin: { l: 70, r: f ? 70 : 20, t: 20, b: 110 },
      xaxis: { title: { text: r.interval + " (UTC" + (r.interval === "week" ? ", starting Monday" : "") + ")" }, type: "date",
        tickvals: r.buckets.length <= 16 ? r.buckets : undefined, tickformat: r.interval === "month" ? "%b %Y" : "%b %d, %Y" },
      yaxis: { title: { text: units.join(" / ") + " per " + r.interval }, rangemode: "tozero" },
      legend: { orientation: "h", y: -0.3 } };
    if (f) layout.yaxis2 = { title: { text: "formula: " + f.expression }, overlaying: "y", side: "right", showgrid: false };
    if (el.clientWidth && el.clientWidth < 600) {
      // A phone: fewer, level date ticks; the legend below in one column, the chart taller by
      // its rows (else the legend scrolls inside the chart and covers the axis title).
      layout.height = 330 + 20 * traces.length;
      layout.margin = { l: 56, r: f ? 66 : 12, t: 10, b: 40 };
      layout.xaxis.tickvals = undefined;
      layout.xaxis.nticks = 4;
      layout.xaxis.tickangle = 0;
      layout.xaxis.tickformat = r.interval === "month" ? "%b %Y" : "%b %d";
      layout.xaxis.title.standoff = 6;
      layout.legend = { orientation: "v", x: 0, xanchor: "left", y: -0.26, yanchor: "top" };
    }
    Plotly.newPlot(el, traces, layout, config);
  }

  function funnelChart(el, r) {
    const steps = r.overall.steps;
    Plotly.newPlot(el, [{ type: "bar", x: steps.map((s) => s.index + ". " + s.label), y: steps.map((s) => s.conversion_from_start.estimate),
      marker: { color: "#1f5fbf" }, hovertemplate: "%{x}: %{y:.1%}<extra></extra>" }],
      { font, height: 300, margin: { l: 70, r: 20, t: 20, b: 90 },
        yaxis: { title: { text: "reached (share of step 1)" }, tickformat: ".0%", range: [0, 1.05] } }, config);
  }

  function retentionChart(el, r) {
    const avg = (r.average || []).slice(1);
    Plotly.newPlot(el, [{ type: "scatter", mode: "lines+markers", x: avg.map((_, k) => k + 1), y: avg,
      line: { color: "#1f5fbf" }, hovertemplate: r.period + " %{x}: %{y:.1%}<extra></extra>" }],
      { font, height: 300, margin: { l: 70, r: 20, t: 20, b: 60 },
        xaxis: { title: { text: r.period + "s since the cohort's start" }, dtick: 1 },
        yaxis: { title: { text: "returned (share, size-weighted)" }, tickformat: ".0%", rangemode: "tozero" } }, config);
  }

  withData("analysis-data", (r) => {
    const el = document.getElementById("chart-trends");
    if (el && r && r.buckets) trendChart(el, r);
  });

  withData("insights-data", (items) => {
    items.forEach((item) => {
      const el = document.getElementById("insight-chart-" + item.id);
      const r = item.result;
      if (!el || !r) return;
      if (item.kind === "trends" && r.buckets) trendChart(el, r);
      else if (item.kind === "funnel" && r.overall) funnelChart(el, r);
      else if (item.kind === "retention" && r.average) retentionChart(el, r);
    });
  });
})();
