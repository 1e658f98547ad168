"""Install paths the operating system refuses are a 422 ``invalid_path``, never a 500.

Found by the schemathesis run: ``~`` with a user this machine does not
have made ``expanduser`` raise, and a name over the filesystem's limit made
``is_dir`` raise; both reached HTTP as 500.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host_plugins"))

from plugin_kit import error_of, running_host

from ops_center_sdk.host.plugin_errors import PluginProblem
from ops_center_sdk.host.plugin_folder import plugin_folder

NO_SUCH_USER = "~no-such-user-on-this-machine/plugin"


@pytest.mark.parametrize(
    ("path", "words"),
    [
        (NO_SUCH_USER, "home directory"),
        ("x" * 5000, "File name too long"),
        ("/" + "a/" * 3000, "File name too long"),
        ("a\x00b", "no plugin folder at 'a\\x00b'"),
        ("/dev/null", "no plugin folder at '/dev/null'"),
    ],
)
async def test_a_path_the_os_refuses_is_invalid_path(tmp_path: Path, path: str, words: str) -> None:
    async with running_host(tmp_path / "data") as host:
        response = await host.http.post("/api/v1/plugins", json={"path": path})
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == "invalid_path"
    assert words in error["message"]
    assert error["details"][0]["field"] == "body.path"
    # The message repeats at most 200 characters of the path.
    assert len(error["message"]) < 400


def test_the_folder_of_a_plugin_yaml_and_of_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "plugin.yaml").write_text("id: p\n", encoding="utf-8")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert plugin_folder(tmp_path / "p" / "plugin.yaml") == (tmp_path / "p").resolve()
    assert plugin_folder("~/p") == (tmp_path / "p").resolve()
    with pytest.raises(PluginProblem, match="home directory"):
        plugin_folder(NO_SUCH_USER)
