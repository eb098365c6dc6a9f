"""``python -m deepclust``: the command line of :mod:`deepclust.cli`."""

import sys

from .cli import main

sys.exit(main())
