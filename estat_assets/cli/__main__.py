"""``python -m estat_assets.cli``: the same as the ``estat-lake`` command."""

import sys

from estat_assets.cli import main

sys.exit(main())
