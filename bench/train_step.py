"""Training-step speed of the bench config, before and after (issue 29), measured in one run.

    python bench/train_step.py --data ROOT [--before REV] [--steps 300] [--threads 2]

"Before" is the package `ssuformer` of git revision REV (default: the commit before this file's speed
work), extracted into a temporary folder and imported from there by a worker process; "after" is the
working tree's. Both workers set up the same run (bench config, same seed, same root) through the
trainer's own `setup` and train it with the trainer's own `fit`, one epoch at a time, taking turns (so a
change in the machine's load hits both alike). Prints steps/s of each (loader, forward, losses, backward
and optimizer: `fit`'s wall time), their ratio, the load average before and after, and the mean training
loss of the last epoch of both (same seed, same data: the maths must agree within float noise).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The last commit before the speed work of issue 29: today's eager code path.
BEFORE = "78ceea0"


def worker(data: str, out: str, steps: int, threads: int, seed: int, sets: list[str]) -> None:
    """Answer "epoch" lines on stdin with one JSON line each: the epoch's row (loss, seconds, step)."""
    import torch

    torch.set_num_threads(threads)
    from ssuformer.config import load_config
    from ssuformer.trainer import fit, setup

    cfg = load_config("bench", sets)
    run = setup(data, cfg, out, resume="never", seed=seed)
    run.log = None  # no files written per epoch: only the step is timed
    epoch = 0
    for line in sys.stdin:
        if line.strip() != "epoch":
            break
        cpu = time.process_time()
        row = fit(run, epoch, max_steps=steps, progress=False)
        print(json.dumps({"step": row["step"], "loss": row["loss"], "seconds": row["seconds"],
                          "cpu_seconds": time.process_time() - cpu,
                          "module": str(Path(sys.modules["ssuformer"].__file__ or "").parent)}), flush=True)
        epoch += 1


def extract(rev: str, dest: Path) -> Path:
    """The `ssuformer` package of `rev` under dest (schemas and the rest come from the working tree)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "ssuformer"], check=True,
                             capture_output=True).stdout
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def start(data: str, out: Path, steps: int, threads: int, seed: int, sets: list[str], path: Path | None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(path)] if path else []) or "")
    if path is None:
        env.pop("PYTHONPATH")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--data", data, "--out", str(out),
           "--steps", str(steps), "--threads", str(threads), "--seed", str(seed)]
    for s in sets:
        cmd += ["--set", s]
    return subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.DEVNULL)


def ask(proc) -> dict:
    proc.stdin.write("epoch\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"train_step: a worker died (exit {proc.wait()}); run it alone to see why")
    return json.loads(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a synthetic root (ssu-synth ROOT --clips 30)")
    ap.add_argument("--before", default=BEFORE, help="git revision of the 'before' code path")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads of each worker")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], help="config overrides for both (key=value)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.data, args.out, args.steps, args.threads, args.seed, args.set)
        return
    with tempfile.TemporaryDirectory(prefix="train-step-") as tmp:
        old = extract(args.before, Path(tmp) / "old")
        load0 = os.getloadavg()
        procs = {"before": start(args.data, Path(tmp) / "run-before", args.steps, args.threads, args.seed,
                                 args.set, old),
                 "after": start(args.data, Path(tmp) / "run-after", args.steps, args.threads, args.seed,
                                args.set, None)}
        rows: dict[str, list[dict]] = {k: [] for k in procs}
        t0 = time.time()
        while any(not r or r[-1]["step"] < args.steps for r in rows.values()):
            for name, proc in procs.items():  # taking turns, one epoch each
                if not rows[name] or rows[name][-1]["step"] < args.steps:
                    rows[name].append(ask(proc))
                    r = rows[name][-1]
                    print(f"{name:6s} step {r['step']:4d}  loss {r['loss']:.4f}  {r['seconds']:.1f} s "
                          f"({r['cpu_seconds']:.1f} CPU s)", flush=True)
        for proc in procs.values():
            proc.stdin.close()
            proc.wait()
        load1 = os.getloadavg()
    rate = {k: v[-1]["step"] / sum(r["seconds"] for r in v) for k, v in rows.items()}
    cpu_rate = {k: v[-1]["step"] / sum(r["cpu_seconds"] for r in v) for k, v in rows.items()}
    loss = {k: v[-1]["loss"] for k, v in rows.items()}
    print(f"\nbench config, {args.steps} steps, seed {args.seed}, {args.threads} torch threads, "
          f"{time.time() - t0:.0f} s in all; load average {load0[0]:.2f} at the start, {load1[0]:.2f} at the end")
    for k in procs:
        print(f"{k:6s} ({rows[k][-1]['module']}): {rate[k]:.3f} steps/s, {cpu_rate[k]:.3f} steps per CPU-second, "
              f"mean loss of the last epoch (to step {rows[k][-1]['step']}) {loss[k]:.5f}")
    # the median epoch of each: robust to a burst of load from others that hits one side's epochs only
    med = {k: statistics.median(r["seconds"] / max(1, r["step"] - (v[i - 1]["step"] if i else 0))
                                for i, r in enumerate(v)) for k, v in rows.items()}
    print(f"median epoch: before {med['before']:.3f} s/step, after {med['after']:.3f} s/step: "
          f"{med['before'] / med['after']:.2f}x")
    print(f"speed-up {rate['after'] / rate['before']:.2f}x in steps/s ({cpu_rate['after'] / cpu_rate['before']:.2f}x "
          "per CPU-second); loss difference "
          f"{abs(loss['after'] - loss['before']) / abs(loss['before']) * 100:.3f} %")


if __name__ == "__main__":
    main()
