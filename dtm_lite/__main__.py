"""``python -m dtm_lite train``: see :mod:`dtm_lite.cli`."""

import sys

from .cli import main

sys.exit(main())
