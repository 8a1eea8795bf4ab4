#!/usr/bin/env bash
# Creates .venv at the repository root and installs everything the project needs, on a fresh machine.
# Quick when nothing changed: a stamp records the hash of pyproject.toml and this script.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.ra-ssu-installed
want=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && "$(cat $stamp)" == "$want" ]]; then exit 0; fi
echo "[bootstrap] installing into .venv (first time: ~5 minutes)" >&2
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
pip=(.venv/bin/python -m pip install --disable-pip-version-check -q)
"${pip[@]}" --upgrade pip setuptools wheel
# torch first, exactly the pair on this machine's disk (a newer torch breaks torchvision/sam2).
"${pip[@]}" torch==2.14.1 torchvision==0.29.1
# sam2 is source-only; an isolated build takes 80 s and fails to compile _C anyway.
SAM2_BUILD_CUDA=0 "${pip[@]}" --no-build-isolation sam2==1.1.0
"${pip[@]}" -e ".[dev]"
# Debian's chromium for the browser tests of the refinement app (root only; skipped elsewhere).
if [[ ! -x /usr/bin/chromium && $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "[bootstrap] chromium not installed: browser tests will skip" >&2
fi
echo "$want" > $stamp
