#!/usr/bin/env bash
# Create .venv and install bordermon with its pinned dependencies (idempotent, fast when done).
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

PY=$(pick_python || true)
if [ -z "$PY" ]; then
  echo "bootstrap: Python 3.11 not found; installing it with apt-get" >&2
  as_root apt-get update -qq && as_root apt-get install -y -qq python3.11 python3.11-venv >/dev/null
  PY=python3.11
fi

stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ -f "$stamp" ]; then exit 0; fi

if ! "$PY" -m venv .venv 2>/dev/null; then
  echo "bootstrap: python venv module missing; installing python3.11-venv" >&2
  as_root apt-get update -qq && as_root apt-get install -y -qq python3.11-venv >/dev/null
  rm -rf .venv && "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
rm -f .venv/.installed-* && touch "$stamp"
echo "bootstrap: .venv ready ($(.venv/bin/bordermon --version))" >&2
