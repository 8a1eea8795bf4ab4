#!/usr/bin/env bash
# `make lock`: re-resolve pyproject.toml (with the dev extra) into requirements-lock.txt, the exact versions
# that scripts/bootstrap.sh installs. Run it after changing dependencies in pyproject.toml, and commit the lock.
# Uses uv (from the dev extra; any uv 0.13 on PATH works too). Extra arguments go to `uv pip compile`,
# e.g. `make lock ARGS="--upgrade-package gradio"`; without --upgrade/--upgrade-package the pins of the
# current lock are kept wherever they still satisfy pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
lock=requirements-lock.txt
tmp=$(mktemp)
tools=$(mktemp -d)
trap 'rm -rf "$tmp" "$tools"' EXIT
UV=${UV:-.venv/bin/uv}
[[ -x $UV ]] || UV=$(command -v uv) || {
  # No venv yet (or a stale lock stops `make setup`): fetch the lock's uv into a throwaway venv.
  want=$(grep -oE '^uv==[^ ]+' $lock 2>/dev/null || echo "uv>=0.13,<0.14")
  echo "[lock] no uv here: installing $want into a temporary venv" >&2
  python3 -m venv "$tools" && "$tools/bin/python" -m pip install -q --disable-pip-version-check "$want"
  UV=$tools/bin/uv
}
[[ -f $lock ]] && cp "$lock" "$tmp"
# The target is fixed (not this machine's): CPython 3.11 on x86-64 Linux with glibc 2.28, as on the CI machines.
# Indexes: uv's default (PyPI); the CI machines' local wheel folders hold the same releases.
printf '%s\n' pip setuptools wheel | "$UV" pip compile pyproject.toml - --extra dev \
  --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
  --custom-compile-command "make lock" --no-progress --quiet -o "$tmp" "$@"
hash=$(python3 scripts/lockfile.py hash)
{ echo "# requirements-lock.txt: every package of the ra-ssu environment (dev extra included), exact versions."
  echo "# Refresh with \`make lock\` (scripts/lock.sh); scripts/bootstrap.sh installs it with --no-deps."
  echo "# pyproject-deps-sha256: $hash"
  grep -v -e '^# requirements-lock.txt:' -e '^# Refresh with' -e '^# pyproject-deps-sha256:' "$tmp"
} > "$lock"
echo "wrote $lock: $(grep -cE '^[A-Za-z0-9].*==' "$lock") packages" >&2
