"""The local Ops-Center for the host benchmark, with the plugin in $BENCH_PLUGIN (if set)."""

import os
from pathlib import Path

from ops_center_sdk.host.server import create_server_app

_folder = os.environ.get("BENCH_PLUGIN")
app = create_server_app(
    data_dir=Path(os.environ["BENCH_DATA"]),
    admin_key="bench-key",
    plugins=[_folder] if _folder else [],
)
