"""minigpt.files.download against a tiny local Hub (http.server in a thread): never the internet.

The server speaks just enough HTTP for the downloader: GET and HEAD, `Range: bytes=N-` (206 / 416), a
redirect like the Hub's to its file storage, 404, and a switch that drops the connection midway.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from minigpt import cli
from minigpt.files import download as dl
from minigpt.files import safetensors as sf

REPO = "openai-community/gpt2"


class Hub:
    """The fake Hub's state: files by URL path, and what the tests switch on."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_after: dict[str, int] = {}   # path -> send only this many bytes, then hang up (once)
        self.ranges = True                    # False: ignore Range like some servers do
        self.log: list[tuple[str, str, str | None]] = []  # (method, path, Range header)


class Handler(BaseHTTPRequestHandler):
    hub: Hub

    def log_message(self, *args) -> None:  # keep the test output quiet
        pass

    def do_HEAD(self) -> None:
        self.respond(body=False)

    def do_GET(self) -> None:
        self.respond(body=True)

    def respond(self, body: bool) -> None:
        hub = self.hub
        hub.log.append((self.command, self.path, self.headers.get("Range")))
        if self.path.startswith("/old-name/"):  # a renamed repo: a relative redirect on the same site
            self.redirect(307, self.path.replace("/old-name/", f"/{REPO}/", 1))
            return
        if self.path.startswith(f"/{REPO}/") and self.path.endswith("/model.safetensors"):
            # the Hub redirects big files to its file storage, telling their size in X-Linked-Size
            size = len(hub.files.get(self.path, b""))
            self.redirect(302, f"http://localhost:{self.server.server_address[1]}/storage{self.path}",
                          {"X-Linked-Size": str(size)})
            return
        if self.path.startswith("/storage") and self.command == "HEAD":
            self.send_error(403)  # storage URLs are signed for GET only
            return
        path = self.path.removeprefix("/storage")
        if path not in hub.files:
            self.send_error(404)
            return
        data = hub.files[path]
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if m and hub.ranges:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        chunk = data[start:]
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        if not body:
            return
        if path in hub.cut_after:  # promise everything, send part, hang up
            self.wfile.write(chunk[: hub.cut_after.pop(path)])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(chunk)


    def redirect(self, code: int, location: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Location", location)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", "0")
        self.end_headers()


def tiny_model_files() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    weights = {"wte.weight": rng.standard_normal((11, 8)).astype(np.float32),
               "wpe.weight": rng.standard_normal((16, 8)).astype(np.float32)}
    return {
        "config.json": json.dumps({"model_type": "gpt2", "n_embd": 8, "vocab_size": 11}).encode(),
        "vocab.json": json.dumps({"a": 0, "b": 1}).encode(),
        "merges.txt": b"#version: 0.2\na b\n",
        "model.safetensors": sf.dumps(weights, {"format": "pt"}),
    }


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    state = Hub()
    for name, data in tiny_model_files().items():
        state.files[f"/{REPO}/resolve/main/{name}"] = data
    handler = type("BoundHandler", (Handler,), {"hub": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("MINIGPT_HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    yield state
    server.shutdown()
    server.server_close()


def url(file: str) -> str:
    return dl.hub_url(REPO, file)


def test_downloads_a_model_folder(hub: Hub, tmp_path: Path) -> None:
    folder = dl.download("gpt2", tmp_path / "gpt2", progress=False)
    assert folder == tmp_path / "gpt2"
    for name, data in tiny_model_files().items():
        assert (folder / name).read_bytes() == data
    assert sorted(p.name for p in folder.iterdir()) == sorted(dl.FILES)  # no .part or temp left
    assert sf.load(folder / "model.safetensors")["wte.weight"].shape == (11, 8)


def test_complete_files_are_not_downloaded_again(hub: Hub, tmp_path: Path) -> None:
    dl.download("gpt2", tmp_path, progress=False)
    hub.log.clear()
    dl.download("gpt2", tmp_path, progress=False)
    assert {method for method, *_ in hub.log} == {"HEAD"}  # only size checks, no data
    assert not any(path.startswith("/storage") for _, path, _ in hub.log)  # size from X-Linked-Size


def test_remote_size_follows_same_site_redirects_only(hub: Hub) -> None:
    files = tiny_model_files()
    endpoint = dl.endpoint()
    assert dl.remote_size(f"{endpoint}/old-name/resolve/main/config.json") == len(files["config.json"])
    assert dl.remote_size(url("model.safetensors")) == len(files["model.safetensors"])


def test_file_whose_size_changed_on_the_server_is_fetched_again(hub: Hub, tmp_path: Path) -> None:
    dl.download("gpt2", tmp_path, progress=False)
    hub.files[f"/{REPO}/resolve/main/merges.txt"] = b"#version: 0.2\na b\nab b\n"
    dl.download("gpt2", tmp_path, progress=False)
    assert (tmp_path / "merges.txt").read_bytes().endswith(b"ab b\n")


def test_interrupted_download_keeps_the_part_and_resumes_with_range(hub: Hub, tmp_path: Path) -> None:
    data = hub.files[f"/{REPO}/resolve/main/model.safetensors"]
    hub.cut_after[f"/{REPO}/resolve/main/model.safetensors"] = 100
    dest = tmp_path / "model.safetensors"
    with pytest.raises(dl.DownloadError, match="interrupted.*run the same command again to resume"):
        dl.download_file(url("model.safetensors"), dest, progress=False, retries=0)
    assert not dest.exists()                                 # never a half file under the final name
    assert (tmp_path / "model.safetensors.part").read_bytes() == data[:100]
    hub.log.clear()
    dl.download_file(url("model.safetensors"), dest, progress=False, retries=0)
    assert dest.read_bytes() == data and not (tmp_path / "model.safetensors.part").exists()
    assert ("GET", f"/storage/{REPO}/resolve/main/model.safetensors", "bytes=100-") in hub.log


def test_retries_resume_within_one_call(hub: Hub, tmp_path: Path) -> None:
    data = hub.files[f"/{REPO}/resolve/main/vocab.json"]
    hub.cut_after[f"/{REPO}/resolve/main/vocab.json"] = 5
    dl.download_file(url("vocab.json"), tmp_path / "vocab.json", progress=False, retries=1)
    assert (tmp_path / "vocab.json").read_bytes() == data
    assert [r for _, _, r in hub.log] == [None, "bytes=5-"]


def test_server_ignoring_range_restarts_cleanly(hub: Hub, tmp_path: Path) -> None:
    data = hub.files[f"/{REPO}/resolve/main/config.json"]
    (tmp_path / "config.json.part").write_bytes(b"XXXX")  # must not be kept in front of the new bytes
    hub.ranges = False
    dl.download_file(url("config.json"), tmp_path / "config.json", progress=False)
    assert (tmp_path / "config.json").read_bytes() == data


def test_part_that_is_already_complete_is_finished(hub: Hub, tmp_path: Path) -> None:
    data = hub.files[f"/{REPO}/resolve/main/merges.txt"]
    (tmp_path / "merges.txt.part").write_bytes(data)
    dl.download_file(url("merges.txt"), tmp_path / "merges.txt", progress=False)  # server answers 416
    assert (tmp_path / "merges.txt").read_bytes() == data
    assert hub.log == [("GET", f"/{REPO}/resolve/main/merges.txt", f"bytes={len(data)}-")]  # one ranged GET


def test_missing_file_is_a_clear_404(hub: Hub, tmp_path: Path) -> None:
    with pytest.raises(dl.DownloadError, match=r"nope/model/resolve/main/config.json: HTTP 404, not found"):
        dl.download("nope/model", tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_weights_are_reported(hub: Hub, tmp_path: Path) -> None:
    hub.files[f"/{REPO}/resolve/main/model.safetensors"] = b"\x10" + bytes(7) + b"<html>oops</html>"
    with pytest.raises(dl.DownloadError, match="not a valid safetensors file.*download again"):
        dl.download("gpt2", tmp_path, progress=False)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def test_unreachable_hub_explains_the_manual_way(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MINIGPT_HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(dl.Unreachable) as info:
        dl.download("gpt2-medium", tmp_path / "m", progress=False)
    message = str(info.value)
    assert "cannot reach" in message and "are you offline" in message
    for file in dl.FILES:  # every URL and where to put it
        assert f"/openai-community/gpt2-medium/resolve/main/{file}" in message
        assert str(tmp_path / "m" / file) in message
    assert not (tmp_path / "m").exists()  # no empty folder left behind


def test_complete_folder_works_offline(hub: Hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    dl.download("gpt2", tmp_path, progress=False)
    monkeypatch.setenv("MINIGPT_HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    assert dl.download("gpt2", tmp_path, progress=False) == tmp_path


def test_cli_download(hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["download", "gpt2", "--dest", str(tmp_path / "g"), "--no-progress"]) == 0
    assert (tmp_path / "g" / "model.safetensors").read_bytes() == tiny_model_files()["model.safetensors"]
    assert str(tmp_path / "g") in capsys.readouterr().out


def test_cli_download_offline_fails_with_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("MINIGPT_HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    assert cli.main(["download", "gpt2", "--dest", str(tmp_path), "--no-progress"]) != 0
    err = capsys.readouterr().err
    assert "cannot reach" in err and "model.safetensors" in err


@pytest.mark.parametrize("name", ["../evil", "a/b/c", "/abs", "", "x/..", "a b"])
def test_names_that_could_escape_the_folder_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a model name"):
        dl.default_dest(name)


def test_default_destination(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MINIGPT_MODELS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert dl.default_dest("gpt2") == tmp_path / "minigpt" / "models" / "gpt2"
    assert dl.default_dest("owner/model") == tmp_path / "minigpt" / "models" / "owner--model"
    monkeypatch.setenv("MINIGPT_MODELS", str(tmp_path / "m"))
    assert dl.default_dest("gpt2-xl") == tmp_path / "m" / "gpt2-xl"
    assert dl.repo_id("gpt2-xl") == "openai-community/gpt2-xl" and dl.repo_id("me/tiny") == "me/tiny"


@pytest.mark.parametrize("value, want", [
    ("1234", 1234), (" 7 ", 7), (None, None), ("", None), ("-1", None), ("1e3", None), ("²", None),
    ("٣", None), ("9" * 5000, None), ("9" * 20, 10**20 - 1), ("9" * 21, None),
])
def test_size_headers_from_a_hostile_server_are_parsed_or_ignored(value, want) -> None:
    """A server's Content-Length is input like any file: never an exception, only a number or None."""
    assert dl._int_header(value) == want


@pytest.mark.parametrize("value, want", [
    ("bytes 100-199/1000", (100, 1000)), ("bytes */1000", (None, 1000)), ("bytes 0-1/*", (0, None)),
    ("bytes ²-3/4", (None, None)), ("bytes 1-2/" + "9" * 5000, (None, None)), (None, (None, None)),
])
def test_content_range_from_a_hostile_server(value, want) -> None:
    assert dl._content_range(value) == want
