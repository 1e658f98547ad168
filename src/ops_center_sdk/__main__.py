"""``python -m ops_center_sdk``: the same as ``ops-center-plugin``."""

import sys

from .cli.main import main

sys.exit(main())
