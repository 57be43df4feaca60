#!/usr/bin/env bash
# Regenerate the README's picture of the report: the 2022 scenario, `bordermon report`, and a
# headless Chromium screenshot of the page's first 2,300 pixels (flows and the worst waits).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/bordermon simulate --scenario mobilization-2022 --out "$work/surge.jsonl.gz"
.venv/bin/bordermon report "$work/surge.jsonl.gz" --out "$work/surge.html" --title "The 2022 surge (bordermon simulate, seed 1)"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$work/profile" \
    --virtual-time-budget=20000 --window-size=1300,2300 --screenshot=docs/images/report-2022.png \
    "file://$work/surge.html" 2>/dev/null
echo "docs/images/report-2022.png"
