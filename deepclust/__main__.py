"""``python -m deepclust``: the command line of :mod:`deepclust.cli`."""

import sys

from .cli import main

if __name__ == "__main__":  # not when a spawned worker process imports this as __mp_main__
    sys.exit(main())
