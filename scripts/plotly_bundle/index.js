// The chart library as the pages use it: plotly's core with only the trace types that
// static/charts.js, static/calibration.js and the templates draw. Adding a chart of a new
// type? Register it here and run scripts/build_plotly.sh (tests/test_static_files.py checks).
"use strict";

var Plotly = require("plotly.js/lib/core");

Plotly.register([
  require("plotly.js/lib/scatter"),
  require("plotly.js/lib/bar"),
  require("plotly.js/lib/heatmap"),
  require("plotly.js/lib/sankey"),
  require("plotly.js/lib/histogram"),
  require("plotly.js/lib/box"),
]);

module.exports = Plotly;
