"""``python -m dtm_lite train``: see :mod:`dtm_lite.interface.cli`."""

import sys

from dtm_lite.interface.cli import main

sys.exit(main())
