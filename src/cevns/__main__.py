"""``python -m cevns``: the command-line interface (same as the ``cevns`` command)."""
import sys

from cevns.cli import main

sys.exit(main())
