// Forecast calibration page: expected against measured lift per concluded hypothesis, with
// both intervals and the y = x line. Data from the json_script block "calibration-data".
(function () {
  "use strict";
  if (typeof Plotly === "undefined") return;
  const el = document.getElementById("chart-calibration");
  const data = document.getElementById("calibration-data");
  if (!el || !data) return;
  const points = JSON.parse(data.textContent).points.filter((p) => p.realized != null);
  if (!points.length) { el.textContent = "No measured lift yet."; return; }
  const font = { family: "system-ui, sans-serif", size: 13, color: "#1d2330" };
  const authors = [...new Set(points.map((p) => p.author))];
  const colours = ["#1f5fbf", "#b3261e", "#2e7d32", "#8e24aa", "#ef6c00", "#00838f"];
  const traces = authors.map((a, k) => {
    const ps = points.filter((p) => p.author === a);
    return {
      type: "scatter", mode: "markers", name: a, x: ps.map((p) => p.predicted), y: ps.map((p) => p.realized),
      text: ps.map((p) => p.label + " (" + p.evidence + (p.validated ? ", validated" : "") + ")"),
      marker: { color: colours[k % colours.length], size: 9, symbol: ps.map((p) => (p.inside ? "circle" : "x")) },
      error_x: { type: "data", symmetric: false, color: "#9aa3b2", thickness: 1, width: 0,
        array: ps.map((p) => p.high - p.predicted), arrayminus: ps.map((p) => p.predicted - p.low) },
      error_y: { type: "data", symmetric: false, color: "#c7ccd6", thickness: 1, width: 0,
        array: ps.map((p) => (p.realized_high != null ? p.realized_high - p.realized : 0)),
        arrayminus: ps.map((p) => (p.realized_low != null ? p.realized - p.realized_low : 0)) },
      hovertemplate: "%{text}<br>expected %{x:+.1%}<br>measured %{y:+.1%}<extra>" + a + "</extra>",
    };
  });
  const all = points.flatMap((p) => [p.low, p.high, p.realized]);
  const lo = Math.min(0, ...all), hi = Math.max(...all);
  traces.push({ type: "scatter", mode: "lines", name: "y = x (as forecast)", x: [lo, hi], y: [lo, hi],
    line: { color: "#1d2330", dash: "dash", width: 1 }, hoverinfo: "skip" });
  Plotly.newPlot(el, traces, {
    font, height: 440, margin: { l: 80, r: 20, t: 20, b: 70 },
    xaxis: { title: { text: "expected relative lift (80% interval)" }, tickformat: "+.0%", zeroline: true },
    yaxis: { title: { text: "measured relative lift (95% interval)" }, tickformat: "+.0%", zeroline: true },
    legend: { orientation: "h", y: -0.2 },
  }, { responsive: true, displaylogo: false });
})();
