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
#: What the schemathesis run (7,001 cases) sent: 210 characters, 381 bytes of UTF-8,
#: over the filesystem's 255-byte limit on a name.
ZALGO = (
    "\u1e70\u033a\u033a\u0315o\u035e \u0337i\u0332\u032c\u0347"
    "\u032a\u0359n\u031d\u0317\u0355v\u031f\u031c\u0318\u0326\u035f"
    "o\u0336\u0319\u0330\u0320k\xe8\u035a\u032e\u033a\u032a\u0339"
    "\u0331\u0324 \u0316t\u031d\u0355\u0333\u0323\u033b\u032a\u035e"
    "h\u033c\u0353\u0332\u0326\u0333\u0318\u0332e\u0347\u0323\u0330"
    "\u0326\u032c\u034e \u0322\u033c\u033b\u0331\u0318h\u035a\u034e"
    "\u0359\u031c\u0323\u0332\u0345i\u0326\u0332\u0323\u0330\u0324v"
    "\u033b\u034de\u033a\u032d\u0333\u032a\u0330-m\u0322i"
    "\u0345n\u0316\u033a\u031e\u0332\u032f\u0330d\u0335\u033c\u031f"
    "\u0359\u0329\u033c\u0318\u0333 \u031e\u0325\u0331\u0333\u032dr"
    "\u031b\u0317\u0318e\u0359p\u0360r\u033c\u031e\u033b\u032d"
    "\u0317e\u033a\u0320\u0323\u035fs\u0318\u0347\u0333\u034d\u031d"
    "\u0349e\u0349\u0325\u032f\u031e\u0332\u035a\u032c\u035c\u01f9\u032c"
    "\u034e\u034e\u031f\u0316\u0347\u0324t\u034d\u032c\u0324\u0353\u033c"
    "\u032d\u0358\u0345i\u032a\u0331n\u0360g\u0334\u0349 "
    "\u034f\u0349\u0345c\u032c\u031fh\u0361a\u032b\u033b\u032f"
    "\u0358o\u032b\u031f\u0316\u034d\u0319\u031d\u0349s\u0317\u0326"
    "\u0332.\u0328\u0339\u0348\u0323"
)


@pytest.mark.parametrize(
    ("path", "words"),
    [
        (NO_SUCH_USER, "home directory"),
        ("x" * 5000, "File name too long"),
        (ZALGO, "File name too long"),
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
