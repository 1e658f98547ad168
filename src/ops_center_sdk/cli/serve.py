"""``ops-center-plugin serve``: run one plugin's app under uvicorn."""

from __future__ import annotations

import argparse
import sys

from ..errors import OpsCenterError


def run(args: argparse.Namespace) -> int:
    """Load the plugin in ``args.path`` and serve its app until interrupted."""
    import uvicorn

    from ..loader import load_plugin
    from ..logger import configure_logging

    configure_logging()
    try:
        loaded = load_plugin(args.path)
    except OpsCenterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    app = getattr(loaded.module, "app", None) or loaded.plugin.create_app()
    base = f"http://{args.host}:{args.port}/plugins/{loaded.plugin.id}"
    print(f"Serving {loaded.plugin.id} {loaded.manifest.version}: {base}/  (docs: {base}/docs)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
