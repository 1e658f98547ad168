"""``ops-center-plugin serve``: run one plugin's app under uvicorn."""

from __future__ import annotations

import argparse
import sys

from ..errors import OpsCenterError
from .listen import PortUnavailable, bound_port, listen, serve


def run(args: argparse.Namespace) -> int:
    """Load the plugin in ``args.path`` and serve its app until interrupted.

    A folder with only a ``main.py`` is served too (its manifest is the
    constructor's), with a note that ``init`` writes a full plugin.yaml.
    """
    from ..loader import code_only_note, load_plugin
    from ..logger import configure_logging

    configure_logging()
    try:
        sock = listen(args.host, args.port)
    except PortUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        loaded = load_plugin(args.path)
    except OpsCenterError as exc:
        sock.close()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if loaded.manifest_from_code:
        print(code_only_note(loaded.folder), flush=True)
    app = getattr(loaded.module, "app", None) or loaded.plugin.create_app()
    host = f"[{args.host}]" if ":" in args.host else args.host
    base = f"http://{host}:{bound_port(sock)}/plugins/{loaded.plugin.id}"
    print(f"Serving {loaded.plugin.id} {loaded.manifest.version}: {base}/  (docs: {base}/docs)")
    with sock:
        serve(app, sock)
    return 0
