"""Separating files: the inputs and the output folder checked, output names that cannot collide, the loop.

The ``separate`` command's work on top of the :class:`~deepclust.separation.separator.Separator`
API, in three steps. :func:`plan` expands the inputs (a folder stands for the audio
files in it), checks each one's header and the output folder, and names each
input's outputs from a template (default ``{stem}/spk{speaker}.wav`` under the
output folder, which is the input's own folder unless given), all before a
model is loaded; inputs that share a stem and a folder (``mix.flac``,
``mix.ogg``) get their extension in the name. :func:`separate_files` then
loads the model once and separates file after file: a file that fails is
reported once and the others go on; a full disk stops the loop, naming what
was written. :func:`save` writes one separation's files, for the API too.
"""

from __future__ import annotations

import logging
import os
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import atomic, paths
from ..config import SeparateConfig, read_config_file
from ..dsp import audio

log = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "{stem}/spk{speaker}.wav"
# The 2017 project's names (separate --seed-names): out_N.wav beside one input, <stem>/out_N.wav for several.
SEED_TEMPLATE, SEED_TEMPLATE_MANY = "out_{speaker}.wav", "{stem}/out_{speaker}.wav"
TEMPLATE_FIELDS = ("stem", "ext", "speaker")


class OutputError(ValueError):
    """The output folder or file-name template cannot be used; the message says why and how to fix it."""


@dataclass
class Job:
    """One input file and the names its speakers' files will get: ``outputs(k)`` for k speakers."""

    path: Path
    root: Path
    template: str
    stem: str

    def outputs(self, count: int) -> list[Path]:
        return output_paths(self.root, self.template, count, stem=self.stem, ext=self.path.suffix.lstrip("."))


@dataclass
class Plan:
    jobs: list[Job] = field(default_factory=list)
    failed: dict[Path, str] = field(default_factory=dict)  # input -> why it is not separated


def check_template(template: str) -> str:
    """``template`` if it names each speaker's file apart (``{speaker}``) with known fields only."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise OutputError(f"filename: not a valid template ({exc}). Received: filename={template!r}") from None
    unknown = names - set(TEMPLATE_FIELDS)
    if unknown or "speaker" not in names:
        raise OutputError("filename: expected a template holding {speaker} (the speaker's number), and "
                          "optionally {stem} and {ext} of the input's name, e.g. '{stem}/spk{speaker}.wav'. "
                          f"Received: filename={template!r}")
    return template


def output_paths(root: str | Path, template: str, count: int, *, stem: str = "mixture", ext: str = "wav") -> list[Path]:
    """The files of speakers 1..``count`` under ``root`` by ``template`` (fields ``stem``, ``ext``, ``speaker``)."""
    return [Path(root) / template.format(stem=stem, ext=ext, speaker=n) for n in range(1, count + 1)]


def check_folder(folder: str | Path) -> Path:
    """``folder`` if it is, or can be made, a writable folder; else an :class:`OutputError` saying why.
    Nothing is created."""
    folder = Path(folder)
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise OutputError(f"{folder}: cannot write there: {existing} is a file, not a folder; choose another "
                          f"output folder. Received: {folder}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{folder}: cannot write there: {existing} is not writable; choose another output "
                          f"folder. Received: {folder}")
    return folder


def expand(inputs: list[str | Path]) -> tuple[list[Path], dict[Path, str]]:
    """Files given and the audio files directly inside folders given, in order and once each; and the
    inputs that are neither, with why."""
    files, failed, seen = [], {}, set()
    for given in map(Path, inputs):
        if given.is_dir():
            found = sorted(p for p in given.iterdir() if p.is_file() and audio.is_audio_name(p))
            if not found:
                failed[given] = (f"no audio files in this folder; expected files ending in one of "
                                 f"{' '.join(audio.extensions())}")
        elif not given.exists():
            failed[given] = "file not found; check the path"
            found = []
        else:
            found = [given]
        for path in found:
            if path.resolve() not in seen:
                seen.add(path.resolve())
                files.append(path)
    return files, failed


def _check_header(path: Path, min_seconds: float) -> None:
    """An :class:`audio.AudioError` if ``path``'s header says it is unreadable, empty or shorter than
    ``min_seconds``."""
    seconds, reason = audio.readable_seconds(path)
    if seconds is None:
        raise audio.AudioError(reason)
    if seconds < min_seconds:
        raise audio.AudioError(f"{seconds:.3f} s long; expected at least {min_seconds} s to tell voices apart")


def _refuse_existing(outputs: list[Path]) -> None:
    """A FileExistsError naming those of ``outputs`` that exist, if any."""
    existing = [str(o) for o in outputs if o.exists()]
    if existing:
        raise FileExistsError(f"output exists ({', '.join(existing)}); refusing to overwrite. Use --force to "
                              "replace, or --out-dir / --filename to write elsewhere")


def plan(inputs: list[str | Path], *, out_dir: str | Path | None = None, filename: str | None = None,
         most_speakers: int = 2, force: bool = False, seed_names: bool = False,
         min_seconds: float = 0.0) -> Plan:
    """Every input checked and named before any model loads.

    ``out_dir``: the folder for every input's outputs (default: each input's
    own); ``filename``: the template (default :data:`DEFAULT_TEMPLATE`);
    ``most_speakers``: how many files an input can get (the count asked, or
    the most ``auto`` can find), all of which must be free unless ``force``.
    An unusable ``out_dir`` or template is an :class:`OutputError` for the
    whole run; an unusable input fails alone, in ``Plan.failed``.
    """
    files, failed = expand(inputs)
    if seed_names and filename is None:
        filename = SEED_TEMPLATE if len(files) + len(failed) == 1 else SEED_TEMPLATE_MANY
    template = check_template(filename or DEFAULT_TEMPLATE)
    if out_dir is not None:
        check_folder(out_dir)
    result = Plan(failed=failed)
    taken: dict[Path, Path] = {}  # output file -> the input that will write it
    stems = {}
    for path in files:
        root = Path(out_dir) if out_dir is not None else path.parent
        key = (root.resolve(), path.stem)
        stems[key] = stems.get(key, 0) + 1
    for path in files:
        root = Path(out_dir) if out_dir is not None else path.parent
        # Inputs of one stem in one folder (mix.flac, mix.ogg) keep their extension in the name.
        stem = path.stem if stems[(root.resolve(), path.stem)] == 1 else f"{path.stem}_{path.suffix.lstrip('.')}"
        job = Job(path, root, template, stem)
        try:
            _check_header(path, min_seconds)
            if out_dir is None:
                check_folder(root)
            outputs = job.outputs(most_speakers)
            clash = [taken[o] for o in outputs if o in taken]
            if clash:
                raise OutputError(f"its outputs would be those of {clash[0]} ({outputs[0]}); put {{stem}} in "
                                  "--filename, or separate them one at a time")
            if not force:
                _refuse_existing(outputs)
        except (audio.AudioError, OutputError, FileExistsError) as exc:
            result.failed[path] = str(exc)
            continue
        taken.update({o: path for o in outputs})
        result.jobs.append(job)
    return result


def save(separation, out_dir: str | Path, filename: str = "spk{speaker}.wav", *, subtype: str = "PCM_16",
         overwrite: bool = False, stem: str | None = None) -> list[Path]:
    """Write ``separation``'s sources (a :class:`~deepclust.separation.separator.Separation`) as WAV files at its sample
    rate: ``out_dir/spk1.wav`` ... by default; ``filename`` is a template with ``{speaker}`` and
    optionally ``{stem}``/``{ext}`` (of ``stem`` or the separated file's name). Scaled down together
    (max-abs) only if they would clip; each file written atomically; existing files refused, all
    checked before any is written, unless ``overwrite``."""
    source = separation.source
    stem = stem or (source.stem if source is not None else "mixture")
    ext = source.suffix.lstrip(".") if source is not None else "wav"
    outputs = output_paths(out_dir, check_template(filename), separation.num_speakers, stem=stem, ext=ext)
    if not overwrite:
        _refuse_existing(outputs)
    sources = audio.peak_safe(separation.sources)
    for path, signal in zip(outputs, sources):
        audio.write(path, signal, separation.sample_rate, subtype=subtype, overwrite=True)
    return outputs


def describe(job: Job, separation, outputs: list[Path]) -> str:
    """The one line said of a separated file: the count, what was done to it, where the files went."""
    k = separation.num_speakers
    notes = "; ".join(separation.notes + [f"warning: {w}" for w in separation.warnings])
    return (f"{job.path}: {k} speaker{'s' if k != 1 else ''}{' (counted)' if separation.counted else ''}"
            f"{f'; {notes}' if notes else ''} -> " + ", ".join(map(str, outputs)))


def separate_files(inputs: list[str | Path], model: str | Path = paths.PRETRAINED, *, num_speakers=None,
                   out_dir=None, filename: str | None = None, seed_names: bool = False, mask=None,
                   force: bool = False, report: Callable[[str], None] = log.info,
                   fail: Callable[[str], None] = log.error) -> tuple[dict[Path, list[Path]], dict[Path, str]]:
    """Separate many files with ``model`` (``"pretrained"``, a run folder or a ``.keras`` file).

    Inputs and outputs are checked by :func:`plan` first; then each file is
    separated and written (``report`` says one line of each, ``fail`` one line
    of each failure). Returns ``(written, failed)``: the outputs per input,
    and the reason per failed input.
    """
    model_path = paths.locate(model)
    saved = paths.saved_config(model_path)
    config = read_config_file(saved).separate if saved.is_file() else SeparateConfig()
    count = num_speakers or config.num_speakers
    most = config.auto_max_speakers if count == "auto" else int(count)
    from .separator import MIN_SECONDS, SeparationError, Separator  # Keras: once the inputs are known good

    work = plan(inputs, out_dir=out_dir, filename=filename, most_speakers=most, force=force,
                seed_names=seed_names, min_seconds=MIN_SECONDS)
    for path, why in work.failed.items():
        fail(f"{path}: {why}")
    written: dict[Path, list[Path]] = {}
    failed = dict(work.failed)
    if not work.jobs:
        return written, failed
    separator = Separator.load(model_path, mask=mask)
    for job in work.jobs:
        try:
            result = separator.separate_file(job.path, count)
            outputs = save(result, job.root, job.template, subtype=separator.config.subtype, overwrite=force,
                           stem=job.stem)
        except atomic.DiskFull as exc:
            done = sum(len(v) for v in written.values())
            failed[job.path] = str(exc)
            fail(f"{job.path}: {exc}; kept: the {done} file(s) of the {len(written)} input(s) separated before")
            for rest in work.jobs[work.jobs.index(job) + 1:]:
                failed[rest.path] = "not separated: the disk is full"
            break
        except (audio.AudioError, SeparationError, FileExistsError, OSError) as exc:
            failed[job.path] = str(exc)
            fail(f"{job.path}: {exc}")
            continue
        written[job.path] = outputs
        report(describe(job, result, outputs))
    return written, failed
