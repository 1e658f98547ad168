"""The spec's Quick Start, run as written by a new user in an empty folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def cli() -> list[str]:
    script = Path(sys.executable).parent / "ops-center-plugin"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "ops_center_sdk"]


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["NO_COLOR"] = "1"
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def test_quick_start_as_written(tmp_path: Path) -> None:
    # ops-center-plugin init my-plugin --name ... --category monitoring
    init = run(
        [
            *cli(),
            "init",
            "my-plugin",
            "--name",
            "My Awesome Plugin",
            "--description",
            "Does something awesome",
            "--author",
            "Your Name",
            "--category",
            "monitoring",
        ],
        tmp_path,
    )
    assert init.returncode == 0, init.stderr
    plugin = tmp_path / "my-plugin"

    # pip install -r requirements.txt: the SDK is installed already; the file must name it.
    requirements = (plugin / "requirements.txt").read_text()
    assert "ops-center-plugin-sdk[test]" in requirements

    validate = run([*cli(), "validate"], plugin)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "my-plugin 1.0.0 is valid" in validate.stdout

    build = run([*cli(), "build"], plugin)
    assert build.returncode == 0, build.stdout + build.stderr
    # The spec: "Creates dist/my-plugin-1.0.0.tar.gz and dist/my-plugin-1.0.0.tar.gz.sha256"
    package = plugin / "dist" / "my-plugin-1.0.0.tar.gz"
    checksum = plugin / "dist" / "my-plugin-1.0.0.tar.gz.sha256"
    assert package.is_file()
    assert checksum.is_file()
    sha256sum = shutil.which("sha256sum")
    assert sha256sum is not None
    assert run([sha256sum, "-c", checksum.name], plugin / "dist").returncode == 0
    first_build = package.read_bytes()

    # The scaffold's own tests pass under plain pytest, in the plugin's folder.
    tests = run([sys.executable, "-m", "pytest", "-q"], plugin)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout
    assert "warning" not in tests.stdout.lower()

    # Running the tests left caches behind; they stay out, so the package is the same.
    assert (plugin / ".pytest_cache").is_dir()
    again = run([*cli(), "build"], plugin)
    assert again.returncode == 0, again.stderr
    assert checksum.read_text().split()[0] in again.stdout
    assert package.read_bytes() == first_build
