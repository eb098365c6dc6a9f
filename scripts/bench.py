#!/usr/bin/env python
"""Benchmark deepclust: prints a table and one JSON line. Not a test: it measures.

    python scripts/bench.py [--config default] [--steps 20] [--base DIR] [--long-minutes 60]

- training throughput (frames/s): the model step alone on synthetic tensors,
  the data pipeline alone (in the process, and in data.workers processes), full ``fit`` with
  the real pipeline, and ``deepclust train`` itself started as its own process
  (every callback, frames/s as it logs them); full / model-alone shows whether
  data starves the model;
- the loss's share of a training step (loss + its gradient alone vs the step);
- separation of a 10 s and a 60 s mixture: real-time factor per stage
  (features, network, k-means, inverse STFT, file I/O) and peak memory;
- optionally a long file (``--long-minutes``) in a child process: its peak RSS;
- the reference every training figure is a ratio to: the same network and low-rank
  loss written as a plain PyTorch loop (``nn.LSTM``, ``torch.einsum``, Adam), timed
  in the same run (``plain_torch_fps``; n/a where PyTorch is not installed);
- ``--matrix``: the model step of each network (the default and shipped 2 x 160,
  3 x 300, 4 x 300) on each installed backend, each in its own process, as a
  table of frames/s and ratios to the plain PyTorch loop;
- the machine, library versions and memory allocator (the benchmark re-executes
  itself under tcmalloc where ``deepclust`` would: see deepclust/allocator.py).

Without ``--base`` the data are generated harmonic "voices" (timing does not
depend on what the voices say); the model is untrained (timing does not depend
on the weights).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from deepclust.backend import accelerators  # noqa: E402  (imports no backend)

RATE = 8000


def synth_voice(f0: float, seconds: float, seed: int, rate: int = RATE) -> np.ndarray:
    from deepclust.corpus.voices import harmonic_voice

    return harmonic_voice(f0, seconds, seed, rate, level=0.2)


def synthetic_base(root: Path, speakers: int = 12, utterances: int = 4) -> Path:
    (root / "wav").mkdir(parents=True, exist_ok=True)
    lines = []
    for s in range(speakers):
        for u in range(utterances):
            path = root / "wav" / f"s{s}_{u}.wav"
            sf.write(path, synth_voice(90 + 17 * s, 3.0, 100 * s + u), RATE)
            lines.append(f"wav/{path.name} spk{s}")
    (root / "train").write_text("\n".join(lines) + "\n")
    (root / "valid").write_text("\n".join(lines[: 4 * utterances]) + "\n")
    return root


def cpu_name() -> str:
    """The processor's model name (Linux's /proc/cpuinfo), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.platform()


def versions() -> dict:
    import keras

    from deepclust import allocator
    out = {"python": platform.python_version(), "keras": keras.__version__, "backend": keras.backend.backend(),
           "numpy": np.__version__, "machine": platform.machine(), "cpus": os.cpu_count(),
           "processor": cpu_name(), "allocator": allocator.describe()}
    backend = keras.backend.backend()
    out[backend] = __import__(backend).__version__
    out["gpus"] = accelerators()
    return out


def peak_accelerator_mib() -> float | None:
    """Peak memory allocated on the first accelerator so far, or None on a CPU."""
    import keras

    if not accelerators():
        return None
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    if backend == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        return stats.get("peak_bytes_in_use", 0) / 2**20
    import tensorflow as tf

    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


def time_model_step(net, cfg, steps: int) -> float:
    """Frames/s of train_on_batch on fixed synthetic tensors (no data pipeline)."""
    rng = np.random.default_rng(0)
    b, t, f, c = cfg.train.batch_size, cfg.data.chunk_frames, cfg.num_bins, cfg.data.max_speakers
    x = rng.standard_normal((b, t, f)).astype(np.float32)
    y = np.eye(c, dtype=np.float32)[rng.integers(0, c, size=(b, t, f))]
    for _ in range(2):
        net.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        net.train_on_batch(x, y)
    return steps * b * t / (time.perf_counter() - start)


def plain_torch_fps(cfg, steps: int) -> float | None:
    """Frames/s of the reference: the network and loss of ``cfg`` as a researcher writes them in plain
    PyTorch (normalisation, ``nn.LSTM`` both ways, dense tanh, unit norm; the low-rank loss by
    ``torch.einsum``; Adam), on the same synthetic batch shape, with this process's cores. None without
    PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    m = cfg.model
    b, t, f, c, d = cfg.train.batch_size, cfg.data.chunk_frames, cfg.num_bins, cfg.data.max_speakers, m.embedding_dim

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.zeros(f))
            self.register_buffer("std", torch.ones(f))
            self.lstm = torch.nn.LSTM(f, m.lstm_units, m.lstm_layers, batch_first=True, bidirectional=True)
            self.dense = torch.nn.Linear(2 * m.lstm_units, f * d)

        def forward(self, x):
            h, _ = self.lstm((x - self.mean) / self.std)
            v = torch.tanh(self.dense(h)).reshape(x.shape[0], -1, d)
            return torch.nn.functional.normalize(v, dim=-1)

    def loss(v, y):  # the weighted low-rank form of deepclust.nn.losses.deep_clustering_loss
        w = (y * y).sum(-1, keepdim=True)
        v = v * w.sqrt()
        terms = [torch.einsum("bnd,bne->bde", a, z).square().sum((1, 2)) for a, z in ((v, v), (v, y), (y, y))]
        return ((terms[0] - 2 * terms[1] + terms[2]) / (w.sum((1, 2)) ** 2 + 1e-8)).mean()

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((b, t, f)).astype(np.float32))
    y = torch.from_numpy(np.eye(c, dtype=np.float32)[rng.integers(0, c, size=(b, t * f))])
    net = Net()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        optimizer.zero_grad()
        loss(net(x), y).backward()
        optimizer.step()

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * b * t / (time.perf_counter() - start)


def time_model_step_on_device(cfg, mixer, steps: int) -> float:
    """Frames/s of train_on_batch with the features computed inside the step (features.on_device):
    the model that fit trains then, on a fixed batch of scaled sources."""
    from deepclust.training.on_device import SourcesOnDevice
    from deepclust.training.train import compile_model

    objective = SourcesOnDevice(cfg)
    trained = compile_model(objective.training_model(objective.build()), cfg, objective)
    x = mixer.source_batch(np.random.default_rng(0), cfg.train.batch_size)
    y = np.zeros(len(x), np.float32)
    for _ in range(2):
        trained.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        trained.train_on_batch(x, y)
    return steps * cfg.train.batch_size * cfg.data.chunk_frames / (time.perf_counter() - start)


def pipeline_cost(mixer, cfg, steps: int) -> tuple[float, float]:
    """Core-seconds (process CPU time) per million training frames of drawing batches in one process:
    with the features on the host (batch) and with them left to the device (source_batch)."""
    frames = steps * cfg.train.batch_size * cfg.data.chunk_frames
    costs = []
    for draw in (mixer.batch, mixer.source_batch):
        start = time.process_time()
        for i in range(steps):
            draw(np.random.default_rng(i), cfg.train.batch_size)
        costs.append((time.process_time() - start) / frames * 1e6)
    return costs[0], costs[1]


def time_loss_share(cfg, step_seconds: float, repeats: int = 20) -> float | None:
    """Seconds of the loss and its gradient per batch / seconds of a whole step."""
    import keras
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    from deepclust.nn.losses import deep_clustering_loss
    from deepclust.training.train import jit_compile

    rng = np.random.default_rng(1)
    b, t, f, c, d = (cfg.train.batch_size, cfg.data.chunk_frames, cfg.num_bins, cfg.data.max_speakers,
                     cfg.model.embedding_dim)
    y = tf.constant(np.eye(c, dtype=np.float32)[rng.integers(0, c, size=(b, t, f))])
    v = tf.Variable(rng.standard_normal((b, t, f, d)).astype(np.float32))

    @tf.function(jit_compile=jit_compile(cfg))
    def loss_and_grad():
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(deep_clustering_loss(y, v))
        return value, tape.gradient(value, v)

    loss_and_grad()
    start = time.perf_counter()
    for _ in range(repeats):
        loss_and_grad()[1].numpy()
    return (time.perf_counter() - start) / repeats / step_seconds


def time_data(mixer, cfg, steps: int) -> tuple[float, float, float]:
    """Frames/s of batch drawing: in this process, in ``data.workers`` worker processes (their start
    excluded), as training draws them, and the same while another thread of this process runs Python
    (as a training loop driving a GPU does, holding the interpreter lock most of the time)."""
    from deepclust.data.dataset import MixtureDataset

    b, t = cfg.train.batch_size, cfg.data.chunk_frames
    rates = []
    for processes, busy in ((0, False), (max(2, cfg.data.workers), False), (max(2, cfg.data.workers), True)):
        dataset = MixtureDataset(mixer, cfg, steps=steps + 1, processes=processes)
        dataset[0]  # workers started and warm
        with python_loop(busy):
            start = time.perf_counter()
            for i in range(1, steps + 1):
                dataset[i]
            rates.append(steps * b * t / (time.perf_counter() - start))
        dataset.close()
    return rates[0], rates[1], rates[2]


@contextlib.contextmanager
def python_loop(run: bool):
    """A thread running pure Python for the duration (when ``run``), then stopped."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    thread = threading.Thread(target=spin, daemon=True)
    if run:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if run:
            thread.join()


def time_full_fit(net, dataset, cfg, steps: int) -> float:
    dataset.steps = steps
    net.fit(dataset, epochs=1, verbose=0)  # warm-up: tracing, thread start
    start = time.perf_counter()
    net.fit(dataset, epochs=1, verbose=0)
    return steps * cfg.train.batch_size * cfg.data.chunk_frames / (time.perf_counter() - start)


def time_train(base: Path, config: str, overrides: list[str], steps: int, folder: Path) -> float:
    """Frames/s as ``deepclust train`` logs them, started as its own process the way a user starts
    it (its own allocator, imports and first steps; every callback; validation excluded); two
    epochs of ``steps`` steps. Read from the run's history.csv (the last epoch's running rate)."""
    from deepclust import paths
    from deepclust.corpus.lists import parse_list, write_list
    from deepclust.training import history_csv

    run = folder / "train_run"
    run.mkdir()
    for split in (paths.TRAIN_LIST, paths.VALID_LIST):  # absolute paths: the run folder is not the user's base
        write_list(run / split, [(e.path.resolve(), e.speaker) for e in parse_list(base / split)])
    sets = [*overrides, "train.epochs=2", f"train.steps_per_epoch={steps}", "train.time_limit=",
            "train.patience=0", "train.lr_patience=0"]
    cmd = [sys.executable, "-m", "deepclust", "train", "--base", str(run), "--config", config, "--quiet"]
    for item in sets:
        cmd += ["--set", item]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"deepclust train failed ({done.returncode}):\n{done.stderr[-3000:]}")
    _, by_epoch = history_csv.read(run / paths.HISTORY_FILENAME)
    return by_epoch[max(by_epoch)]["frames_per_second"]


def time_separation(net, cfg, seconds: float, folder: Path) -> dict:
    from deepclust.separation.files import save
    from deepclust.separation.separator import Separator

    mix = 0.5 * (synth_voice(110, seconds, 11) + synth_voice(230, seconds, 12))
    path = folder / f"mix_{int(seconds)}s.wav"
    sf.write(path, mix, RATE)
    sep = Separator(net, cfg.separate)

    def separate_and_write():
        result = sep.separate_file(path, num_speakers=2)
        with sep.timings.measure("io"):
            save(result, folder / f"out_{int(seconds)}s", overwrite=True)

    separate_and_write()  # warm-up
    sep.timings.clear()
    start = time.perf_counter()
    separate_and_write()
    total = time.perf_counter() - start
    rtf = {stage: value / seconds for stage, value in sep.timings.items()}
    rtf["total"] = total / seconds
    return rtf


def long_file_child(config: str, minutes: float) -> None:
    """Run in a child process: separate a ``minutes``-long file, print peak RSS (MiB)."""
    from deepclust.config import load_config
    from deepclust.nn.model import build_model
    from deepclust.separation.files import save
    from deepclust.separation.separator import Separator

    cfg = load_config(config)
    net = build_model(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        seconds = minutes * 60
        with sf.SoundFile(path, "w", RATE, 1, "PCM_16") as f:
            for block in range(int(np.ceil(seconds / 60))):
                n = min(60.0, seconds - 60 * block)
                f.write(0.5 * (synth_voice(110, n, 2 * block) + synth_voice(230, n, 2 * block + 1)))
        start = time.perf_counter()
        save(Separator(net, cfg.separate).separate_file(path, num_speakers=2), Path(tmp) / "out")
        total = time.perf_counter() - start
    print(json.dumps({"long_minutes": minutes, "long_rtf": total / seconds, "long_peak_mib": own_peak_mib()}))


def own_peak_mib() -> float:
    """This process's peak RSS. Linux's ru_maxrss survives exec, so a child started by a big
    parent would report the parent's peak; VmHWM belongs to this process's own memory."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="default", help="config name or file (default: default)")
    parser.add_argument("--steps", type=int, default=20, help="training steps per measurement")
    parser.add_argument("--base", help="a folder with train/valid lists (default: generated voices)")
    parser.add_argument("--long-minutes", type=float, default=0, help="also separate a file this long (child process)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="config override")
    parser.add_argument("--pipeline", action="store_true",
                        help="time the input pipeline alone (no network): batches drawn in this process and in "
                             "data.workers processes, and its core-seconds per million frames")
    parser.add_argument("--matrix", action="store_true",
                        help="the model step of each network on each installed backend (own processes), against "
                             "the plain PyTorch loop: a table of frames/s and ratios")
    parser.add_argument("--_long-child", dest="long_child", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--_step-child", dest="step_child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--_reference-child", dest="reference_child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if argv is None:  # the same allocator as `deepclust train` gets, so the ratios compare like with like
        from deepclust.allocator import reexec_with_fast_allocator

        reexec_with_fast_allocator([__file__, *sys.argv[1:]])

    if args.long_child:
        long_file_child(args.config, args.long_child)
        return 0
    if args.matrix:
        return print_matrix(args.config, args.set, args.steps)
    if args.step_child or args.reference_child:
        return step_child(args.config, args.set, args.steps, reference=args.reference_child)
    from deepclust.backend import load

    load()  # the backend's start-up lines kept off the table, as the command line does

    import keras

    from deepclust.config import load_config, parse_override
    from deepclust.data import mixer as mixer_lib
    from deepclust.data.dataset import MixtureDataset
    from deepclust.training import objectives
    from deepclust.training.train import compile_model

    cfg = load_config(args.config, dict(parse_override(s) for s in args.set))
    objective = objectives.for_config(cfg)  # what fit trains; the model step is timed on host features
    if cfg.train.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    results: dict = {"config": args.config, "overrides": args.set, "versions": versions(),
                     "batch_size": cfg.train.batch_size, "chunk_frames": cfg.data.chunk_frames,
                     "jit": cfg.train.jit, "mixed_precision": cfg.train.mixed_precision}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = Path(args.base) if args.base else synthetic_base(tmp / "base")
        mixer = mixer_lib.Mixer(mixer_lib.load_corpus(base / "train", cfg.audio.sample_rate), cfg, objective.form)
        if args.pipeline:
            return print_pipeline(results, mixer, cfg, args.steps)
        host = objectives.DeepClustering(cfg)
        net = compile_model(host.build(), cfg, host)

        results["model_fps"] = time_model_step(net, cfg, args.steps)
        results["plain_torch_fps"] = plain_torch_fps(cfg, args.steps)
        step_seconds = cfg.train.batch_size * cfg.data.chunk_frames / results["model_fps"]
        results["loss_share"] = time_loss_share(cfg, step_seconds)
        results["data_fps_1thread"], results["data_fps"], results["data_fps_busy"] = \
            time_data(mixer, cfg, max(4, args.steps // 2))
        results["pipeline_core_s_per_mframe_host"], results["pipeline_core_s_per_mframe_device"] = \
            pipeline_cost(mixer, cfg, max(4, args.steps // 2))
        results["model_fps_on_device"] = time_model_step_on_device(cfg, mixer, args.steps)
        results["on_device_step_cost"] = results["model_fps"] / results["model_fps_on_device"] - 1
        fitted = net
        if type(objective) is not objectives.DeepClustering:  # a plug-in's model: sources in, or a second output
            fitted = compile_model(objective.training_model(objective.build()), cfg, objective)
        results["full_fps"] = time_full_fit(fitted, MixtureDataset(mixer, cfg), cfg, args.steps)
        results["train_fps"] = time_train(base, args.config, args.set, args.steps, tmp)
        results["full_over_model"] = results["full_fps"] / results["model_fps"]
        results["train_over_model"] = results["train_fps"] / results["model_fps"]
        for seconds in (10, 60):
            results[f"separate_{seconds}s_rtf"] = time_separation(net, cfg, seconds, tmp)
        results["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        results["peak_accelerator_mib"] = peak_accelerator_mib()
    if args.long_minutes:
        out = subprocess.run([sys.executable, __file__, "--config", args.config, "--_long-child",
                              str(args.long_minutes)], capture_output=True, text=True)
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
        results.update(json.loads(line[-1]) if line else {"long_error": out.stderr[-2000:]})

    print_table(results)
    print(json.dumps(results))
    return 0


# The networks of --matrix: the default's (which the shipped model has), and the larger ones a GPU recipe uses.
NETWORKS = {"2 x 160": [], "3 x 300": ["model.lstm_layers=3", "model.lstm_units=300"],
            "4 x 300": ["model.lstm_layers=4", "model.lstm_units=300"]}


def step_child(config: str, sets: list[str], steps: int, reference: bool) -> int:
    """In a child process: one JSON line with the model step's frames/s on this process's backend, or the
    plain PyTorch loop's (``reference``)."""
    from deepclust.config import load_config, parse_override

    cfg = load_config(config, dict(parse_override(s) for s in sets))
    if reference:
        print(json.dumps({"fps": plain_torch_fps(cfg, steps)}))
        return 0
    import keras

    from deepclust.nn.model import build_model
    from deepclust.training.train import compile_model

    net = compile_model(build_model(cfg), cfg)
    print(json.dumps({"fps": time_model_step(net, cfg, steps), "backend": keras.backend.backend()}))
    return 0


def print_matrix(config: str, sets: list[str], steps: int) -> int:
    """``--matrix``: every network of NETWORKS on every installed backend, each in its own process (a
    backend is chosen once per process), and the plain PyTorch loop of each network as the reference."""
    from deepclust import backend

    rows = []
    for network, overrides in NETWORKS.items():
        cells = {"plain PyTorch loop": ("torch", True)}
        cells.update({name: (name, False) for name in backend.PREFERENCE if backend.installed(name)})
        figures = {}
        for label, (name, reference) in cells.items():
            cmd = [sys.executable, __file__, "--config", config, "--steps", str(steps),
                   "--_reference-child" if reference else "--_step-child"]
            for item in [*sets, *overrides]:
                cmd += ["--set", item]
            done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, backend.ENV: name})
            line = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
            figures[label] = json.loads(line[-1])["fps"] if line else None
            if not line:
                print(f"{network} {label}: failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        rows.append((network, figures))
    print(f"\nmodel step, frames/s (ratio to the plain PyTorch loop): config={config} {' '.join(sets)}, "
          f"{steps} steps; {cpu_name()} ({os.cpu_count()} cpus)")
    for network, figures in rows:
        reference = figures.get("plain PyTorch loop")
        cells = [f"{label} {fps:,.0f}" + (f" ({fps / reference:.2f})" if reference and label != "plain PyTorch loop"
                                          else "") if fps else f"{label} n/a" for label, fps in figures.items()]
        print(f"  {network:<8} " + "  |  ".join(cells))
    print(json.dumps({network: figures for network, figures in rows}))
    return 0


def print_pipeline(results: dict, mixer, cfg, steps: int) -> int:
    """``--pipeline``: the input pipeline's rows alone, as a table and one JSON line."""
    results["data_fps_1thread"], results["data_fps"], results["data_fps_busy"] = time_data(mixer, cfg, steps)
    results["pipeline_core_s_per_mframe_host"], results["pipeline_core_s_per_mframe_device"] = \
        pipeline_cost(mixer, cfg, steps)
    print(f"\ndeepclust input pipeline: config={results['config']} {' '.join(results['overrides'])}  "
          f"batch={results['batch_size']} chunk={results['chunk_frames']}; {results['versions']['processor']}")
    print(f"  in the training process       {results['data_fps_1thread']:,.0f} frames/s")
    print(f"  in data.workers processes     {results['data_fps']:,.0f} frames/s")
    print(f"  the same, this process busy   {results['data_fps_busy']:,.0f} frames/s")
    print(f"  cost, features on the host    {results['pipeline_core_s_per_mframe_host']:.2f} core-s per million frames")
    print(f"  cost, features on the device  {results['pipeline_core_s_per_mframe_device']:.2f} core-s per million frames")
    print(json.dumps(results))
    return 0


def print_table(r: dict) -> None:
    v = r["versions"]
    print(f"\ndeepclust benchmark: config={r['config']} {' '.join(r['overrides'])}  batch={r['batch_size']} "
          f"chunk={r['chunk_frames']} jit={r['jit']} mixed_precision={r['mixed_precision']}")
    print(f"machine: {v['processor']} ({v['cpus']} cpus; {'GPUs ' + str(v['gpus']) if v.get('gpus') else 'no GPU'}); "
          f"{v.get('allocator', '?')}; python {v['python']}, keras {v['keras']} ({v['backend']})"
          + "".join(f", {k} {v[k]}" for k in ("tensorflow", "torch", "jax") if k in v))
    rows = [
        ("training: model step alone", f"{r['model_fps']:,.0f} frames/s"),
        ("reference: the plain PyTorch loop", "n/a (no PyTorch)" if r["plain_torch_fps"] is None else
         f"{r['plain_torch_fps']:,.0f} frames/s (model step / it: {r['model_fps'] / r['plain_torch_fps']:.2f}, "
         f"train / it: {r['train_fps'] / r['plain_torch_fps']:.2f})"),
        ("training: data pipeline, in the training process", f"{r['data_fps_1thread']:,.0f} frames/s"),
        ("training: data pipeline, data.workers processes", f"{r['data_fps']:,.0f} frames/s"),
        ("training: the same, the training process busy in Python", f"{r['data_fps_busy']:,.0f} frames/s"),
        ("training: model step, features on the device", f"{r['model_fps_on_device']:,.0f} frames/s "
         f"({100 * r['on_device_step_cost']:+.1f} % time per step)"),
        ("input pipeline, features on the host", f"{r['pipeline_core_s_per_mframe_host']:.2f} core-s per million frames"),
        ("input pipeline, features on the device", f"{r['pipeline_core_s_per_mframe_device']:.2f} core-s per million frames"),
        ("training: full fit (no callbacks)", f"{r['full_fps']:,.0f} frames/s"),
        ("training: deepclust train", f"{r['train_fps']:,.0f} frames/s"),
        ("full fit / model alone", f"{r['full_over_model']:.2f}"),
        ("train / model alone", f"{r['train_over_model']:.2f}"),
        ("loss + gradient share of a step", "n/a" if r["loss_share"] is None else f"{100 * r['loss_share']:.1f} %"),
    ]
    for seconds in (10, 60):
        rtf = r[f"separate_{seconds}s_rtf"]
        parts = ", ".join(f"{k} {rtf.get(k, 0):.4f}" for k in ("features", "network", "kmeans", "istft", "io"))
        rows.append((f"separate {seconds} s: RTF", f"{rtf['total']:.4f} ({parts})"))
    rows.append(("peak memory (this process)", f"{r['peak_rss_mib']:,.0f} MiB"))
    if r.get("peak_accelerator_mib") is not None:
        rows.append(("peak accelerator memory", f"{r['peak_accelerator_mib']:,.0f} MiB"))
    if "long_minutes" in r:
        rows.append((f"separate {r['long_minutes']:g} min file", f"RTF {r['long_rtf']:.4f}, peak {r['long_peak_mib']:,.0f} MiB"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")


if __name__ == "__main__":
    sys.exit(main())
