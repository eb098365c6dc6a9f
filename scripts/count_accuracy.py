#!/usr/bin/env python
"""How often ``--num-speakers auto`` gets the count right, on held-out 1-, 2- and 3-speaker mixtures.

    python scripts/count_accuracy.py --corpus DIR --base RUN [--mixtures 40] [--max-cosine 0.7 0.75 0.8]

1-speaker "mixtures" are single utterances of DIR's test speakers; 2- and
3-speaker ones come from DIR/test_mix_2spk.txt and test_mix_3spk.txt (written
by ``deepclust make-corpus``). Prints accuracy per count and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True, help="corpus folder with the test list and test_mix_*spk.txt")
    parser.add_argument("--base", required=True, help="training folder (or model file) to test")
    parser.add_argument("--mixtures", type=int, default=40, help="mixtures per speaker count")
    parser.add_argument("--max-cosine", type=float, nargs="+", help="separate.auto_max_cosine value(s) to try "
                                                                     "(default: the model's)")
    parser.add_argument("--max-cosine-many", type=float, nargs="+",
                        help="separate.auto_max_cosine_many value(s) to try with each (default: the model's)")
    parser.add_argument("--split", default="test", help="speakers to draw from: test (report) or valid (tuning)")
    args = parser.parse_args(argv)

    import numpy as np

    from deepclust import audio
    from deepclust.democorpus import mixture_list_path, write_mixture_list
    from deepclust.clustering import estimate_num_speakers
    from deepclust.lists import parse_list
    from deepclust.separate import Separator
    from deepclust.testsets import load_mixture, read_mixture_list

    sep = Separator.from_path(args.base)
    corpus = Path(args.corpus)
    entries = parse_list(corpus / args.split)
    singles = entries[:: max(1, len(entries) // args.mixtures)][: args.mixtures]
    signals: dict[int, list] = {1: [audio.read(e.path, sep.sample_rate)[0] for e in singles]}
    for k in (2, 3):
        if args.split == "test":
            listing = mixture_list_path(corpus, k)
        else:
            listing = write_mixture_list(corpus, k, args.mixtures, seed=1, split=args.split,
                                         path=corpus / f".{args.split}_mix_{k}spk.txt")
        specs = read_mixture_list(listing)[: args.mixtures]
        signals[k] = [load_mixture(spec, sep.sample_rate)[0] for spec in specs]
    # The count comes from the analysis's sample of active-bin embeddings alone (what
    # separate --num-speakers auto counts on): compute it once per mixture, try every value on it.
    samples = {k: [sep.embed_file(m).samples for m in mixtures] for k, mixtures in signals.items()}
    pairs = [(a, b) for a in args.max_cosine or [sep.config.auto_max_cosine]
             for b in args.max_cosine_many or [sep.config.auto_max_cosine_many]]
    for max_cosine, many in pairs:
        results = {}
        for k, per_mixture in samples.items():
            counts = [estimate_num_speakers(e, sep.config.auto_max_speakers, max_cosine, many) for e in per_mixture]
            results[str(k)] = {"accuracy": float(np.mean([c == k for c in counts])), "count": len(counts),
                               "estimates": {str(c): counts.count(c) for c in sorted(set(counts))}}
            print(f"max cosine {max_cosine}/{many}: {k} speaker(s): {100 * results[str(k)]['accuracy']:.1f} % correct of "
                  f"{len(counts)} (estimates {results[str(k)]['estimates']})")
        total = sum(r["accuracy"] * r["count"] for r in results.values()) / sum(r["count"] for r in results.values())
        print(f"max cosine {max_cosine}/{many}: overall {100 * total:.1f} %")
        print(json.dumps({"split": args.split, "max_cosine": max_cosine, "max_cosine_many": many, "overall": total,
                          "by_count": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
