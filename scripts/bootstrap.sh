#!/usr/bin/env bash
# Creates .venv at the repository root holding exactly requirements-lock.txt (every package, pinned), plus the
# project itself in editable mode. Quick when nothing changed: a stamp records the hash of the inputs.
# The lock is made from pyproject.toml by `make lock` (scripts/lock.sh); see docs/install.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
lock=requirements-lock.txt
stamp=.venv/.ra-ssu-installed
# A lock older than pyproject.toml's dependencies would install the wrong set: stop with the fix.
"$PY" scripts/lockfile.py check-fresh
want=$(cat pyproject.toml $lock scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && "$(cat $stamp)" == "$want" ]]; then exit 0; fi
echo "[bootstrap] installing $lock into .venv (first time: ~5 minutes)" >&2
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
# pip warns once per package about each configured local index that lacks it: keep only other messages.
pip_install() {
  .venv/bin/python -m pip install --disable-pip-version-check -q "$@" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
pip=(pip_install)
# The build tools first, at the lock's versions: the sdists below (sam2, antlr4) are built with them.
"${pip[@]}" --no-deps $(grep -E '^(pip|setuptools|wheel)==' $lock)
# Everything else in one go, exactly as locked: --no-deps, so nothing outside the lock comes in.
# torch/torchvision are the exact pair on the CI machines' disk (pip's find-links picks them up there).
# sam2 is source-only; an isolated build takes 80 s and fails to compile _C anyway.
SAM2_BUILD_CUDA=0 "${pip[@]}" --no-deps --no-build-isolation -r $lock
"${pip[@]}" --no-deps --no-build-isolation -e .
# A venv made from an older lock may hold packages the lock dropped: remove them (a sync, not just an install).
extras=$(.venv/bin/python scripts/lockfile.py extras)
if [[ -n $extras ]]; then
  echo "[bootstrap] removing packages the lock no longer lists: $extras" >&2
  # shellcheck disable=SC2086
  .venv/bin/python -m pip uninstall -y -q $extras
fi
.venv/bin/python -m pip check >&2 || { echo "[bootstrap] $lock is inconsistent: run \`make lock\`" >&2; exit 1; }
.venv/bin/python scripts/lockfile.py check-env >&2
# Debian's chromium for the browser tests of the refinement app (root only; skipped elsewhere).
if [[ ! -x /usr/bin/chromium && $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "[bootstrap] chromium not installed: browser tests will skip" >&2
fi
echo "$want" > $stamp
