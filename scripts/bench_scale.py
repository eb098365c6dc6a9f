#!/usr/bin/env python
"""Corpus scale: peak memory and time to the first training step for lists of about 1, 10 and 50 hours.

    python scripts/bench_scale.py --corpus DEMO_DIR [--hours 1 10 50] [--config default] [--old-tree DIR]

The lists are the built-in corpus's training files (``deepclust make-corpus``), listed as many times
as needed, each copy under its own speaker IDs and file names (hard links, so each copy is a file of
its own to the cache and costs no disk). For each size: a cold start (no cache: the cache is built),
then a warm one (the cache is there, and the run resumes from the state the cold run saved). Each is
``train()`` in a fresh process, timed from the process's start to the end of the first training
step, with the process's peak resident memory then (VmHWM). ``--old-tree`` also times a checkout of
the code before the cache (the whole corpus decoded into memory at every start), for comparison.
Prints a table and one JSON line. Not a test: it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
started = float(sys.argv[2])
import keras
from deepclust import train
train = getattr(train, "train", train)  # the function; in an --old-tree checkout, the module holding it

class FirstStep(keras.callbacks.Callback):
    seen = None
    def on_train_batch_end(self, batch, logs=None):
        if FirstStep.seen is None:
            peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
            FirstStep.seen = {"first_step_s": time.time() - started, "peak_mib": peak}
            self.model.stop_training = True

sets = {"train.epochs": 1000, "train.steps_per_epoch": 4, "data.valid_mixtures": 8, "train.time_limit": ""}
train(sys.argv[1], sys.argv[3], sets, verbose=0, callbacks=[FirstStep()])
print("SCALE " + json.dumps(FirstStep.seen))
"""


def entries(corpus: Path) -> list[tuple[Path, str]]:
    from deepclust.corpus.lists import parse_list

    return [(e.path.resolve(), e.speaker) for e in parse_list(corpus / "train")]


def make_run(corpus: Path, folder: Path, copies: int) -> float:
    """A run folder whose train list holds ``copies`` copies of the corpus's training files; returns its hours."""
    import soundfile as sf

    from deepclust.corpus.lists import parse_list, write_list

    source = entries(corpus)
    lines, seconds = [], 0.0
    one = sum(sf.info(str(p)).duration for p, _ in source)
    for c in range(copies):
        target = folder / "audio" / f"copy{c}"
        target.mkdir(parents=True, exist_ok=True)
        for i, (path, speaker) in enumerate(source):
            link = target / f"{i}_{path.name}"
            if not link.exists():
                os.link(path, link)
            lines.append((link, f"{speaker}_c{c}"))
        seconds += one
    write_list(folder / "train", lines)
    write_list(folder / "valid", [(e.path.resolve(), e.speaker) for e in parse_list(corpus / "valid")])
    return seconds / 3600


def first_step(folder: Path, config: str, pythonpath: str | None = None) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    done = subprocess.run([sys.executable, "-c", CHILD, str(folder), repr(time.time()), config],
                          capture_output=True, text=True, env=env)
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("SCALE ")]
    if done.returncode or not line:
        raise RuntimeError(f"child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(line[-1][6:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True, help="a corpus from deepclust make-corpus (its train/valid lists)")
    parser.add_argument("--hours", type=float, nargs="+", default=[1, 10, 50], help="list sizes to measure")
    parser.add_argument("--config", default="default")
    parser.add_argument("--work", default="scale_runs", help="folder for the run folders (hard links, caches)")
    parser.add_argument("--old-tree", help="a checkout of the code before the cache, timed the same way")
    args = parser.parse_args(argv)
    import soundfile as sf

    corpus, work = Path(args.corpus).resolve(), Path(args.work).resolve()
    one = sum(sf.info(str(p)).duration for p, _ in entries(corpus)) / 3600
    rows = []
    for hours in args.hours:
        folder = work / f"{hours:g}h"
        shutil.rmtree(folder, ignore_errors=True)
        actual = make_run(corpus, folder, max(1, round(hours / one)))
        row = {"hours": round(actual, 2), "files": sum(1 for _ in (folder / "train").open()) }
        row["cold"] = first_step(folder, args.config)
        row["warm"] = first_step(folder, args.config)
        row["cache_mib"] = sum(p.stat().st_size for p in (folder / "cache").glob("*.pcm")) / 2**20
        if args.old_tree:  # a run folder as the old code would find it: lists only
            for name in ("checkpoints", "cache"):
                shutil.rmtree(folder / name, ignore_errors=True)
            for name in ("config.toml", "history.csv", "model.keras"):
                (folder / name).unlink(missing_ok=True)
            row["in_memory"] = first_step(folder, args.config, str(Path(args.old_tree).resolve()))
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{'hours':>6} {'files':>7} {'cold first step':>16} {'cold peak':>10} {'warm first step':>16} "
          f"{'warm peak':>10} {'cache':>9}" + ("  in-memory (before)" if args.old_tree else ""))
    for r in rows:
        old = f"  {r['in_memory']['first_step_s']:.1f} s, {r['in_memory']['peak_mib']:,.0f} MiB" if "in_memory" in r else ""
        print(f"{r['hours']:>6.1f} {r['files']:>7} {r['cold']['first_step_s']:>14.1f} s {r['cold']['peak_mib']:>6,.0f} MiB "
              f"{r['warm']['first_step_s']:>14.1f} s {r['warm']['peak_mib']:>6,.0f} MiB {r['cache_mib']:>5,.0f} MiB{old}")
    print(json.dumps({"scale": rows, "config": args.config, "cpus": os.cpu_count()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
