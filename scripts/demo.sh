#!/usr/bin/env bash
# The README's demo: synthetic data -> validate -> train the tiny SSUFormer on CPU -> score the test split.
# Offline, about 5-10 minutes on 2 cores. DEMO_DIR, DEMO_CLIPS and DEMO_EPOCHS change where and how much.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg
DEMO=${DEMO_DIR:-/tmp/ra-ssu-demo}
CLIPS=${DEMO_CLIPS:-16}
EPOCHS=${DEMO_EPOCHS:-12}
rm -rf "$DEMO"
start=$(date +%s)
stamp() { echo "   ($(( $(date +%s) - start )) s so far)"; }
echo "== 1/4 ssu-synth: $CLIPS synthetic clips with exact ground truth -> $DEMO/root"
.venv/bin/ssu-synth "$DEMO/root" --clips "$CLIPS" --seed 0 --no-progress
stamp
echo "== 2/4 ssu-validate"
.venv/bin/ssu-validate "$DEMO/root"
echo "== 3/4 ssu-train: the tiny SSUFormer (every part of the model at width 64) for $EPOCHS epochs on CPU"
.venv/bin/ssu-train --data "$DEMO/root" --config tiny --out "$DEMO/run" --seed 0 \
  --set train.epochs="$EPOCHS" --set train.val_every=4 --no-progress
stamp
echo "== 4/4 ssu-eval: predict the test split with the best checkpoint and score it"
.venv/bin/ssu-eval --data "$DEMO/root" --split test --checkpoint "$DEMO/run/best.pt" --no-meteor --no-progress
echo "demo finished in $(( $(date +%s) - start )) s."
echo "Predictions in the annotation format (open them with ssu-refine): $DEMO/run/best_eval_test/predictions"
echo "A few minutes of training only shows the pipeline; for a model that has learned, see docs/benchmarks.md."
