"""``python -m restore``: the ``restore`` command."""

import sys

from .cli import main

sys.exit(main())
