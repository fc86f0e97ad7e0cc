#!/usr/bin/env bash
# Build static/vendor/plotly-custom.min.js: plotly.js with only the trace types the pages
# draw (scripts/plotly_bundle/index.js), minified with esbuild. The built file is committed,
# so tests, CI and `make demo` need no npm; run this after changing the trace list or the
# pinned versions in scripts/plotly_bundle/package.json (package-lock.json pins the rest).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
cd "$here/plotly_bundle"
npm ci --no-audit --no-fund --ignore-scripts
version="$(node -p 'require("plotly.js/package.json").version')"
traces="$(node -e 'const s=require("fs").readFileSync("index.js","utf8");
  console.log([...s.matchAll(/plotly\.js\/lib\/(\w+)"/g)].map(m=>m[1]).filter(t=>t!=="core").join(", "))')"
# The same settings as plotly's own esbuild-config.js (global = window, its regl and stream
# aliases, no AMD); CSS imports are only maplibre's, for map traces we do not bundle.
npx esbuild index.js --bundle --minify --format=iife --global-name=Plotly \
  --platform=browser --target=es2016 --legal-comments=eof \
  --define:global=window --define:define.amd=false --define:process.env.NODE_DEBUG=false \
  --alias:regl=@plotly/regl --alias:stream=stream-browserify --loader:.css=empty \
  --banner:js="/*! plotly.js v${version} (MIT, Copyright 2012-2026 Plotly, Inc.), custom bundle: ${traces}. Built by scripts/build_plotly.sh */" \
  --outfile="$root/static/vendor/plotly-custom.min.js"
ls -l "$root/static/vendor/plotly-custom.min.js"
