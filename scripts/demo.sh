#!/usr/bin/env bash
# The README's demo: make a synthetic dataset root and validate it. Grows as parts land.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg
DEMO=${DEMO_DIR:-/tmp/ra-ssu-demo}
rm -rf "$DEMO"
echo "== ssu-synth: 12 synthetic clips with exact ground truth -> $DEMO/root"
.venv/bin/ssu-synth "$DEMO/root" --clips 12 --seed 0
echo "== ssu-validate"
.venv/bin/ssu-validate "$DEMO/root"
