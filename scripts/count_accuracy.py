#!/usr/bin/env python
"""How often ``--num-speakers auto`` gets the count right, on held-out 1-, 2- and 3-speaker mixtures.

    python scripts/count_accuracy.py --corpus DIR --base RUN [--mixtures 40] [--threshold 0.1]

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
    parser.add_argument("--threshold", type=float, help="separate.auto_threshold to use (default: the model's)")
    args = parser.parse_args(argv)

    import numpy as np

    from deepclust import audio
    from deepclust.corpus import mixture_list_path
    from deepclust.data import parse_list
    from deepclust.evaluate import load_mixture, read_mixture_list
    from deepclust.separate import Separator

    sep = Separator.from_path(args.base, auto_threshold=args.threshold)
    corpus = Path(args.corpus)
    signals: dict[int, list] = {1: [audio.read(e.path, sep.sample_rate)[0]
                                    for e in parse_list(corpus / "test")[: args.mixtures]]}
    for k in (2, 3):
        specs = read_mixture_list(mixture_list_path(corpus, k))[: args.mixtures]
        signals[k] = [load_mixture(spec, sep.sample_rate)[0] for spec in specs]
    results = {}
    for k, mixtures in signals.items():
        counts = [sep.separate(m, "auto").num_speakers for m in mixtures]
        results[str(k)] = {"accuracy": float(np.mean([c == k for c in counts])), "count": len(counts),
                           "estimates": {str(c): counts.count(c) for c in sorted(set(counts))}}
        print(f"{k} speaker(s): {100 * results[str(k)]['accuracy']:.1f} % correct of {len(counts)} "
              f"(estimates {results[str(k)]['estimates']})")
    total = sum(r["accuracy"] * r["count"] for r in results.values()) / sum(r["count"] for r in results.values())
    print(f"overall: {100 * total:.1f} % (threshold {sep.config.auto_threshold})")
    print(json.dumps({"threshold": sep.config.auto_threshold, "overall": total, "by_count": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
