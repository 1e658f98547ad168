"""The spec's Quick Start, run as written by a new user in an empty folder."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from dev_server import DevServer


def cli() -> list[str]:
    script = Path(sys.executable).parent / "ops-center-plugin"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "ops_center_sdk"]


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["NO_COLOR"] = "1"
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)


@pytest.mark.slow
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


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_quick_start() -> list[str]:
    """The commands of the README's Quick Start block, one a line, as written."""
    text = README.read_text(encoding="utf-8").split("<!-- quick-start -->\n", 1)[1]
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def as_run_here(line: str, clone: Path) -> tuple[list[str], Path]:
    """A README line as a command and its folder: ``.venv/bin/...`` is this test's venv."""
    cwd = clone
    if line.startswith("(cd "):
        folder, line = line[len("(cd ") :].split(" && ", 1)
        cwd, line = clone / folder, line.split(")", 1)[0]
    command: list[str] = []
    for token in shlex.split(line, comments=True):
        if token.endswith("/ops-center-plugin"):
            command += cli()
        elif token.endswith("/python"):
            command.append(sys.executable)
        else:
            command.append(token)
    return command, cwd


@pytest.mark.slow
def test_the_readme_quick_start_runs_from_a_clone(tmp_path: Path) -> None:
    lines = readme_quick_start()
    clone = tmp_path / "clone"
    clone.mkdir()
    commands = [as_run_here(line, clone)[0] for line in lines]
    verbs = ["pytest" if "pytest" in c else c[len(cli())] for c in commands]
    assert verbs == ["init", "validate", "pytest", "dev", "build", "publish"], lines
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "OPS_CENTER_"))}
    env.update(NO_COLOR="1", OPS_CENTER_CONFIG_DIR=str(tmp_path / "config"))
    port = free_port()
    dev: DevServer | None = None
    try:
        for line in lines:
            command, cwd = as_run_here(line, clone)
            if "dev" in command:
                dev = DevServer([*command, "--port", str(port)], env, cwd)
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as http:
                    dev.wait_until(
                        lambda: http.get("/plugins/my-plugin/health").status_code == 200,
                        "the plugin to serve",
                    )
                continue
            command = [c.replace(":8000", f":{port}") for c in command]
            done = subprocess.run(
                command, cwd=cwd, env=env, capture_output=True, text=True, check=False
            )
            assert done.returncode == 0, f"{line}\n{done.stdout}{done.stderr}"
            if "publish" in command:
                assert "published my-plugin 1.0.0" in done.stdout
                # The key is the one dev kept, and the note says where it really is.
                assert str(tmp_path / "config" / "dev-keys") in done.stdout + done.stderr
    finally:
        if dev is not None:
            assert dev.stop() == 0, dev.output
    assert (clone / "my-plugin" / "dist" / "my-plugin-1.0.0.tar.gz").is_file()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_dev_help_and_the_readme_say_where_the_admin_key_is_kept(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ops_center_sdk.cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(["dev", "--help"])
    assert exited.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "kept outside the data folder, in ~/.config/ops-center/dev-keys/" in shown
    assert "saved in the data folder" not in shown
    readme = " ".join(README.read_text(encoding="utf-8").split())
    assert "`~/.config/ops-center/dev-keys/`" in readme
    assert ".ops-center/data/admin-key" not in readme
