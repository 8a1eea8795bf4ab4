#!/usr/bin/env bash
# The whole chain on real clips: ssu-collect (3 real VGG-Sound test clips from ../shared/data) -> ssu-annotate
# (tiny models) -> refine (the refinement app's controller: an eraser stroke and a caption edit per clip,
# accepted by a reviewer) -> ssu-export splits + hf -> ssu-train (tiny, 2 steps) -> ssu-eval --checkpoint.
# Offline, CPU, about 2 minutes on 2 idle cores. Needs .venv (make test or make demo sets it up).
# DEMO_DIR, SHARED_DATA and DEMO_KEYWORDS change where, from what and which clips.
#
# The annotation models are TINY RANDOM-WEIGHT TEST MODELS (tests/tiny_models.py) whose outputs are forced to
# be non-empty: their masks and captions are NOISE. The run shows that every stage reads what the previous
# one wrote; for real drafts pass real models to ssu-annotate (docs/annotate.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# Tiny models run many tiny ops: one thread is faster than two, and much faster on a busy machine.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
DATA=${SHARED_DATA:-../shared/data}
DEMO=${DEMO_DIR:-/tmp/ra-ssu-demo-real}
KEYWORDS=${DEMO_KEYWORDS:-playing piano,orchestra,cow lowing}
PY=.venv/bin/python
if [ ! -f "$DATA/index/vggsound/test.csv" ] || [ ! -d "$DATA/media/vggsound" ]; then
  echo "error: real clips not found under $DATA (index/vggsound/test.csv, media/vggsound/); set SHARED_DATA" >&2
  exit 2
fi
rm -rf "$DEMO"
start=$(date +%s)
stamp() { echo "   ($(( $(date +%s) - start )) s so far)"; }
echo "NOTE: the annotation models are tiny random-weight test models: their masks and captions are NOISE."

echo "== 1/7 tiny annotation models with forced non-empty outputs -> $DEMO/models"
M="$DEMO/models"
mkdir -p "$DEMO"
$PY -m tests.tiny_models "$M" --forced >"$DEMO/models.log" 2>&1 || { cat "$DEMO/models.log" >&2; exit 1; }
MODELS=(--sam "$M/sam" --sam2 "$M/sam2" --captioner "$M/captioner" --detector "$M/detector"
        --audio-tagger "$M/audio_tagger" --device cpu --offline)

echo "== 2/7 ssu-collect: one clip per keyword ($KEYWORDS) from the VGG-Sound test list and local copies"
.venv/bin/ssu-collect "$DEMO/root" --source vggsound --index "$DATA/index/vggsound/test.csv" \
  --media-dir "$DATA/media/vggsound" --keywords "$KEYWORDS" --per-keyword 1 --available-only --seed 0 --strict
stamp

echo "== 3/7 ssu-annotate: detector -> SAM -> SAM2 -> captions (gate off: the tiny audio tagger hears nothing)"
.venv/bin/ssu-annotate "$DEMO/root" "${MODELS[@]}" --no-gate --max-instances 1
.venv/bin/ssu-validate "$DEMO/root"
stamp

echo "== 4/7 refine through the refinement app's controller: per clip, an eraser stroke and a caption edit on"
echo "       frame 37 by refiner alice, submitted for review, accepted by reviewer rita"
$PY - "$DEMO" <<'EOF'
import sys
from pathlib import Path

from annotator.refine.auth import Role, UserStore, add_user
from annotator.refine.controller import Controller
from annotator.refine.state import Decision
from schemas.root import DatasetRoot

demo = Path(sys.argv[1])
users = demo / "users.toml"
add_user(users, "alice", "alice-demo", Role.refiner)
add_user(users, "rita", "rita-demo", Role.reviewer)
ctl = Controller(demo / "root", UserStore(users))
ctl.open_session("alice", "alice")
ctl.open_session("rita", "rita")
for clip in DatasetRoot.open(demo / "root").annotated_ids():
    ctl.open_clip("alice", clip)
    v = ctl.view("alice")
    source = v.sources[0].id
    # the page's edits: one eraser dab (a stroke of one point, radius 64) and the caption of the span over frame 37
    v = ctl.stroke("alice", v.revision, 37, source, [[256, 256]], 64, erase=True)
    rows = [[a, b, f"a refined caption of {clip}" if int(a) <= 37 < int(b) else t] for a, b, t in v.spans]
    v = ctl.set_spans("alice", v.revision, source, rows)
    v = ctl.decide("alice", v.revision, Decision.accept)
    v = ctl.open_clip("rita", clip)
    v = ctl.decide("rita", v.revision, Decision.accept)
    print(f"   {clip}: {v.message}")
EOF
echo "   (ssu-refine $DEMO/root --users $DEMO/users.toml serves the same edits in the browser)"

echo "== 5/7 ssu-export: splits of the accepted clips, then the Hugging Face layout"
.venv/bin/ssu-export splits "$DEMO/root" --seed 0
.venv/bin/ssu-export hf "$DEMO/root" --out "$DEMO/export"
stamp

echo "== 6/7 ssu-train: the tiny SSUFormer for 2 steps on CPU"
.venv/bin/ssu-train --data "$DEMO/root" --config tiny --out "$DEMO/run" --seed 0 --device cpu --max-steps 2 \
  --set train.epochs=2 --set train.batch_size=2 --no-progress
stamp

# One clip per category can leave val and test empty (a 75/10/15 split of 3 clips): then score train.
SPLIT=test
[ -s "$DEMO/root/splits/test.txt" ] || SPLIT=train
CKPT="$DEMO/run/best.pt"
[ -f "$CKPT" ] || CKPT="$DEMO/run/last.pt"
echo "== 7/7 ssu-eval: predict the $SPLIT split with $(basename "$CKPT") and score it against the refined annotations"
.venv/bin/ssu-eval --data "$DEMO/root" --split "$SPLIT" --checkpoint "$CKPT" --no-meteor --no-progress
echo "demo_real finished in $(( $(date +%s) - start )) s."
echo "REMINDER: masks and captions came from tiny random-weight models: they are noise, and so are the scores."
echo "Root: $DEMO/root   export: $DEMO/export   run: $DEMO/run"
