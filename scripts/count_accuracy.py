#!/usr/bin/env python
"""How often ``--num-speakers auto`` gets the count right, on held-out 1-, 2- and 3-speaker mixtures.

    python scripts/count_accuracy.py --base RUN --corpus DIR [--split test|valid] [--mixtures 40]
    python scripts/count_accuracy.py --base RUN --speakers LIST_OR_KALDI_DIR [--mixture-lists L2 L3]
        [--max-cosine 0.75 0.8 0.85] [--max-cosine-many 0.7 0.75]

1-speaker inputs are single utterances spread over the speakers; 2- and
3-speaker ones come from the built-in corpus's DIR/test_mix_2spk.txt and
test_mix_3spk.txt (``--corpus``, written by ``deepclust make-corpus``), from
``--mixture-lists`` (say ``scripts/real_voices.py make``'s lists, with
``--speakers`` their speakers: the Kaldi directory ``speechocean762/test`` or
``DIR/fsdd/list``), or are drawn from the speakers of ``--split valid`` or
``--speakers``. The k-means centres of each input are found once and
every pair of limits is tried on them: choose the limits on validation voices,
never on the voices you report. Prints accuracy per count and a JSON line per pair.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
DRAW_SEED = 5  # mixtures drawn from --speakers


def speaker_entries(args) -> list:
    """The (path, speaker) entries single voices and drawn mixtures come from."""
    from deepclust.corpus import lists

    if args.corpus:
        return lists.parse_list(Path(args.corpus) / args.split)
    source = Path(args.speakers)
    if source.is_dir():
        entries, problems = lists.read_kaldi_dir(source)
        for where, why in problems:
            print(f"{where}: skipped: {why}", file=sys.stderr)
        return entries
    return lists.parse_list(source)


def mixture_specs(args, entries, k: int) -> list:
    """``args.mixtures`` mixtures of ``k`` speakers: from a given list, the corpus's test list, or drawn."""
    import numpy as np

    from deepclust.corpus.demo import draw_mixture_list, draw_test_mixtures, mixture_list_path
    from deepclust.evaluation.testsets import MixtureSpec, find_mixtures

    if args.mixture_lists:
        return find_mixtures(args.mixture_lists[k - 2])[: args.mixtures]
    if args.corpus and args.split == "test":
        return find_mixtures(mixture_list_path(args.corpus, k))[: args.mixtures]
    if args.corpus:  # the validation lists RESULTS.md's earlier tuning used, kept in the corpus
        hidden = Path(args.corpus) / f".{args.split}_mix_{k}spk.txt"
        return find_mixtures(draw_mixture_list(args.corpus, k, args.mixtures, seed=1, split=args.split,
                                               path=hidden))
    by_speaker: dict[str, list] = {}
    for entry in entries:
        by_speaker.setdefault(entry.speaker, []).append(entry.path)
    drawn = draw_test_mixtures(by_speaker, k, args.mixtures, np.random.default_rng([DRAW_SEED, k]))
    return [MixtureSpec(id=f"drawn_{k}spk_{i}", sources=tuple(paths), gains_db=tuple(gains))
            for i, (paths, gains) in enumerate(drawn)]


def centre_cosines_by_count(args, sep) -> dict[int, list[dict[int, float]]]:
    """{true count: [each input's centre cosines]}: the one costly step, done once for every pair of limits."""
    from deepclust.dsp import audio
    from deepclust.evaluation.testsets import load_mixture
    from deepclust.separation.clustering import centre_cosines

    entries = speaker_entries(args)
    singles = entries[:: max(1, len(entries) // args.mixtures)][: args.mixtures]
    signals = {1: [audio.read(e.path, sep.sample_rate)[0] for e in singles]}
    for k in (2, 3):
        signals[k] = [load_mixture(spec, sep.sample_rate)[0] for spec in mixture_specs(args, entries, k)]
    # The count comes from the analysis's sample of active-bin embeddings alone (what separate
    # --num-speakers auto counts on).
    most = sep.config.auto_max_speakers
    return {k: [centre_cosines(sep.embed_file(m).samples, most) for m in mixtures] for k, mixtures in signals.items()}


def report(cosines: dict[int, list], max_cosine: float, many: float) -> float:
    """Print the accuracy of one pair of limits per count and as a JSON line; return the mean over counts."""
    import numpy as np

    from deepclust.separation.clustering import count_from_cosines

    results = {}
    for k, per_input in cosines.items():
        counts = [count_from_cosines(c, max_cosine, many) for c in per_input]
        results[str(k)] = {"accuracy": float(np.mean([c == k for c in counts])), "count": len(counts),
                           "estimates": {str(c): counts.count(c) for c in sorted(set(counts))}}
        print(f"max cosine {max_cosine}/{many}: {k} speaker(s): {100 * results[str(k)]['accuracy']:.1f} % correct of "
              f"{len(counts)} (estimates {results[str(k)]['estimates']})")
    overall = float(np.mean([r["accuracy"] for r in results.values()]))
    print(f"max cosine {max_cosine}/{many}: overall {100 * overall:.1f} %")
    print(json.dumps({"max_cosine": max_cosine, "max_cosine_many": many, "overall": overall, "by_count": results}))
    return overall


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="training folder (or model file) to test")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--corpus", help="built-in corpus folder with its lists and test_mix_*spk.txt")
    where.add_argument("--speakers", help="a 'path speakerID' list or a Kaldi data directory of held-out speakers")
    parser.add_argument("--split", default="test", choices=("test", "valid"),
                        help="with --corpus: speakers to draw from, test (report) or valid (tuning)")
    parser.add_argument("--mixture-lists", nargs=2, metavar=("LIST_2SPK", "LIST_3SPK"),
                        help="with --speakers: 2- and 3-speaker mixture lists (default: drawn from the speakers)")
    parser.add_argument("--mixtures", type=int, default=40, help="inputs per speaker count")
    parser.add_argument("--max-cosine", type=float, nargs="+", help="separate.auto_max_cosine value(s) to try "
                                                                     "(default: the model's)")
    parser.add_argument("--max-cosine-many", type=float, nargs="+",
                        help="separate.auto_max_cosine_many value(s) to try with each (default: the model's)")
    args = parser.parse_args(argv)
    if args.mixture_lists and not args.speakers:
        parser.error("--mixture-lists goes with --speakers (their speakers' single voices). "
                     f"Received: --mixture-lists {' '.join(args.mixture_lists)} without --speakers")

    from deepclust.separation.separator import Separator

    sep = Separator.from_path(args.base)
    cosines = centre_cosines_by_count(args, sep)
    pairs = [(a, b) for a in args.max_cosine or [sep.config.auto_max_cosine]
             for b in args.max_cosine_many or [sep.config.auto_max_cosine_many]]
    overall = {pair: report(cosines, *pair) for pair in pairs}
    if len(pairs) > 1:
        best = max(overall, key=overall.get)
        print(f"best here: max cosine {best[0]}/{best[1]}, {100 * overall[best]:.1f} % (choose on validation voices)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
