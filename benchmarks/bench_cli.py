"""``ops-center-plugin --help`` wall time vs ``python -c pass``. Target: <= 3x.

python benchmarks/bench_cli.py
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from _common import time_command, verdict

RUNS = 30


def main() -> None:
    beside_python = Path(sys.executable).parent / "ops-center-plugin"
    cli = shutil.which("ops-center-plugin") or str(beside_python)
    baseline = time_command([sys.executable, "-c", "pass"], RUNS)
    help_time = time_command([cli, "--help"], RUNS)
    ratio = help_time / baseline
    print(f"python -c pass:            {baseline * 1000:.1f} ms")
    print(f"ops-center-plugin --help:  {help_time * 1000:.1f} ms")
    print(f"ratio {ratio:.2f}x  {verdict(ratio, 3.0, higher_is_better=False)}")


if __name__ == "__main__":
    main()
