#!/usr/bin/env python
"""Check that no held-out speaker or recording is in a training or validation list.

    python scripts/held_out.py --lists RUN/train RUN/valid \
        --held-out ../shared/data/speechocean762/test ../shared/data/librispeech-excerpts/test \
                   ../shared/data/speech-commands/test ../shared/data/fsdd

A held-out source is a Kaldi data directory (the speakers of its ``utt2spk`` and
the files of its ``wav.scp``) or any other folder (every file below it: FSDD's
recordings). A list entry is held out when its file is one of those files (links
resolved), or its speaker is one of those speakers, as it stands or without the
``NAME-`` prefix that ``scripts/pretrained.py`` puts on each corpus's speakers.
Prints what it compared and each entry held out; exits with status 1 if there is
one, so a recipe or CI can stop on it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def held_out(sources: list[Path]) -> tuple[set[str], set[str]]:
    """(speakers, resolved file paths) of the held-out ``sources``."""
    from deepclust.corpus import lists

    speakers, files = set(), set()
    for source in sources:
        if (source / "utt2spk").is_file():
            entries, _ = lists.read_kaldi_dir(source)
            speakers |= {e.speaker for e in entries}
            files |= {os.path.realpath(e.path) for e in entries}
        elif source.is_dir():
            files |= {os.path.realpath(p) for p in source.rglob("*") if p.is_file()}
        else:
            raise SystemExit(f"{source}: not a folder; give a Kaldi data directory or a folder of recordings. "
                             f"Received: held_out={str(source)!r}")
    return speakers, files


def offending(list_files: list[Path], speakers: set[str], files: set[str]) -> list[str]:
    """Each entry of ``list_files`` whose file or speaker is held out, as ``list:line: why``."""
    from deepclust.corpus import lists

    found = []
    for list_file in list_files:
        for entry in lists.parse_list(list_file):
            bare = entry.speaker.split("-", 1)[1] if "-" in entry.speaker else entry.speaker
            if os.path.realpath(entry.path) in files:
                found.append(f"{entry.where}: {entry.path} is a held-out recording")
            elif entry.speaker in speakers or bare in speakers:
                found.append(f"{entry.where}: speaker {entry.speaker} is held out")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lists", nargs="+", type=Path, required=True, help="training and validation lists")
    parser.add_argument("--held-out", nargs="+", type=Path, required=True,
                        help="Kaldi data directories or folders of recordings that must stay out of the lists")
    args = parser.parse_args(argv)
    speakers, files = held_out(args.held_out)
    found = offending(args.lists, speakers, files)
    print(f"{len(speakers)} held-out speakers and {len(files)} held-out files against "
          f"{', '.join(map(str, args.lists))}: {len(found) or 'no'} entries held out")
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
