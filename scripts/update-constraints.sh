#!/usr/bin/env bash
# Regenerate the pinned constraints for Python 3.11: resolve ".[prod,openlineage,dev]" in a throwaway venv, then freeze.
# torch stays at 2.13.0: a CPU build of it is on disk here, and any other spec downloads gigabytes.
set -euo pipefail
cd "$(dirname "$0")/.."
out=constraints/constraints-3.11.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q "torch==2.13.0" -e ".[prod,openlineage,dev]"
{
  echo "# Pinned for Python 3.11 by scripts/update-constraints.sh on $(date -u +%Y-%m-%d). Do not edit by hand."
  "$tmp/venv/bin/pip" freeze --exclude-editable | grep -vi '^airflow-mlops-provider' | sed 's/^torch==2.13.0+cpu$/torch==2.13.0/'
} > "$out"
echo "wrote $out ($(grep -vc '^#' "$out") pins)"
