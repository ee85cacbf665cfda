"""``python -m ingester`` is the same as the ``sportrix-ingester`` console script."""

import sys

from ingester.cli import main

sys.exit(main())
