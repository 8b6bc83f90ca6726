"""Fetch a GPT-2 checkpoint folder from the Hugging Face Hub with the standard library (`minigpt download`).

A GPT-2 folder is four files: config.json, vocab.json, merges.txt and model.safetensors, each at
`{endpoint}/{repo}/resolve/{revision}/{file}`. Downloading them well is mostly about failure:

- atomic: bytes go to `<file>.part`, which is fsynced and renamed only once complete, so a file with the
  final name is always whole;
- resumable: a `.part` left by an interrupted run is continued with an HTTP Range request, not restarted;
- cached: a file already present with the size the server reports is not downloaded again (offline, it is
  used as it is);
- offline or blocked: a clear message lists the URLs and the folder to put them in by hand.

Where files go: `--dest DIR`, else $MINIGPT_MODELS/<name>, else ~/.cache/minigpt/models/<name>
($XDG_CACHE_HOME respected). A cache folder and not the clone, because checkpoints are 0.5-6 GB: git must
never see them, and several clones can share them.

What this file deliberately does not do: authentication (gated/private repos), `.bin` (pickle) checkpoints,
hash verification, or parallel downloads. It knows nothing about what the files mean (see minigpt/hf.py).
"""

from __future__ import annotations

import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from minigpt import __version__
from minigpt.files.safetensors import SafetensorsError, read_header

DEFAULT_ENDPOINT = "https://huggingface.co"
FILES = ("config.json", "vocab.json", "merges.txt", "model.safetensors")  # small ones first: fail fast
# OpenAI's GPT-2 sizes, by the short names everyone uses, and their home on the Hub today.
ALIASES = {
    "gpt2": "openai-community/gpt2",                # 124M parameters, model.safetensors ~0.5 GB
    "gpt2-medium": "openai-community/gpt2-medium",  # 355M, ~1.5 GB
    "gpt2-large": "openai-community/gpt2-large",    # 774M, ~3.2 GB
    "gpt2-xl": "openai-community/gpt2-xl",          # 1.5B, ~6.4 GB
}
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_CHUNK = 1 << 20  # read 1 MiB at a time


class DownloadError(OSError):
    """A download that could not be completed; the message says what to do about it."""


class Unreachable(DownloadError):
    """The server could not be reached at all (offline, DNS, refused, timeout, proxy)."""


def endpoint() -> str:
    """The Hub's base URL: $MINIGPT_HF_ENDPOINT (e.g. a mirror, or a test server), else huggingface.co."""
    return os.environ.get("MINIGPT_HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def repo_id(name: str) -> str:
    """'gpt2' -> 'openai-community/gpt2'; any other 'owner/model' Hub id is taken as it is."""
    repo = ALIASES.get(name, name)
    if not _REPO_ID.match(repo) or ".." in repo:
        raise ValueError(f"{name!r} is not a model name: use gpt2, gpt2-medium, gpt2-large, gpt2-xl or a "
                         "Hugging Face repo id like 'owner/model'")
    return repo


def default_dest(name: str) -> Path:
    """The folder `minigpt download NAME` fills when --dest is not given (see the module docstring)."""
    repo_id(name)  # refuse names that could escape the folder
    root = os.environ.get("MINIGPT_MODELS")
    if root is None:
        cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        root = Path(cache) / "minigpt" / "models"
    return Path(root) / name.replace("/", "--")


def hub_url(repo: str, file: str, revision: str = "main") -> str:
    return f"{endpoint()}/{repo}/resolve/{revision}/{file}"


def download(name: str, dest: str | Path | None = None, *, files: tuple[str, ...] = FILES,
             revision: str = "main", progress: bool = True, retries: int = 2) -> Path:
    """Fetch a model's files into dest (default: default_dest(name)) and return the folder.

    Files already complete are kept; interrupted ones are resumed. Raises DownloadError with instructions
    when the Hub cannot be reached or a file does not exist.
    """
    repo = repo_id(name)
    folder = Path(dest) if dest is not None else default_dest(name)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    urls = {file: hub_url(repo, file, revision) for file in files}
    for file, url in urls.items():
        try:
            download_file(url, folder / file, progress=progress, retries=retries)
        except Unreachable as exc:  # could not connect at all: explain the manual way
            if created and not any(folder.iterdir()):
                folder.rmdir()  # leave no empty folder behind
            raise Unreachable(f"{exc}\n\n{manual_instructions(urls, folder)}") from None
    _check_model_file(folder / "model.safetensors")
    return folder


def manual_instructions(urls: dict[str, str], folder: Path) -> str:
    listing = "\n".join(f"  {url}\n      -> {folder / file}" for file, url in urls.items())
    return ("To get the model without minigpt's downloader, fetch these files with a browser or curl and put "
            f"them in the folder shown:\n{listing}\nThen point minigpt at {folder} "
            "(e.g. minigpt.hf.load_gpt2). Behind a proxy: set HTTPS_PROXY. Using a mirror: set "
            "MINIGPT_HF_ENDPOINT to its base URL.")


def download_file(url: str, dest: str | Path, *, progress: bool = True, retries: int = 2,
                  timeout: float = 30.0) -> Path:
    """Download one URL to dest atomically, resuming `<dest>.part` and skipping a dest already complete.

    A transfer that breaks midway is resumed up to `retries` times; after that the .part file stays, and
    running again continues from it.
    """
    dest = Path(dest)
    if dest.is_file():
        try:
            remote = remote_size(url, timeout=timeout)
        except Unreachable:
            remote = None  # offline: trust what is there (it was renamed into place only when complete)
        if remote is None or remote == dest.stat().st_size:
            return dest
    for attempt in range(retries + 1):
        try:
            _fetch(url, dest, progress=progress, timeout=timeout)
            return dest
        except _Interrupted as exc:
            if attempt == retries:
                raise DownloadError(f"download of {url} was interrupted ({exc}); the part received is kept "
                                    f"in {_part(dest)} — run the same command again to resume") from None


class _Interrupted(Exception):
    """The connection broke (or the server sent too few bytes) after the transfer started: resumable."""


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Hand 3xx answers back to the caller instead of following them (used for HEAD, see remote_size)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_follow = urllib.request.build_opener()                 # GET: follow redirects to the file storage
_no_follow = urllib.request.build_opener(_NoRedirects)  # HEAD: look at each redirect ourselves


def _open(url: str, *, method: str = "GET", start: int = 0, timeout: float):
    """urlopen with our User-Agent and an optional Range; turn failures into DownloadError."""
    headers = {"User-Agent": f"minigpt/{__version__}"}
    if start:
        headers["Range"] = f"bytes={start}-"
    opener = _no_follow if method == "HEAD" else _follow
    try:
        return opener.open(urllib.request.Request(url, headers=headers, method=method), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 or 300 <= exc.code < 400:
            return exc  # "range not satisfiable" or a redirect not followed: the caller decides
        hint = {404: "not found — check the model name, and that the repo has this file (minigpt reads "
                     "model.safetensors only, never pickle-based .bin files)",
                401: "unauthorized — the repo is private or gated; download it by hand",
                403: "forbidden — the repo is private or gated; download it by hand"}
        raise DownloadError(f"{url}: HTTP {exc.code}, {hint.get(exc.code, exc.reason)}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(f"cannot reach {url} ({reason}); are you offline?") from None


def remote_size(url: str, *, timeout: float = 30.0) -> int | None:
    """The file's size from HEAD requests, without downloading it (None if the server does not say).

    Like the Hub's own client, follow redirects only within the same site (a renamed repo, e.g. gpt2 ->
    openai-community/gpt2). Big files redirect to a storage service instead; the Hub puts their size in
    that redirect's X-Linked-Size header, and storage URLs signed for GET may refuse a HEAD.
    """
    for _ in range(10):
        with _open(url, method="HEAD", timeout=timeout) as resp:
            if not 300 <= resp.status < 400:
                return _int_header(resp.headers.get("Content-Length"))
            linked = _int_header(resp.headers.get("X-Linked-Size"))
            if linked is not None:
                return linked
            target = urllib.parse.urljoin(url, resp.headers.get("Location", ""))
            if urllib.parse.urlsplit(target).netloc != urllib.parse.urlsplit(url).netloc:
                return None
            url = target
    return None


_SIZE = r"[0-9]{1,20}"   # ASCII digits only (str.isdigit accepts '²', which int() refuses), at most 20


def _int_header(value: str | None) -> int | None:
    """A size header's integer, or None if it is absent or not a plain number of at most 20 digits."""
    value = (value or "").strip()
    return int(value) if re.fullmatch(_SIZE, value) else None


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """'bytes 100-199/1000' -> (100, 1000); 'bytes */1000' -> (None, 1000); missing -> (None, None)."""
    m = re.fullmatch(rf"bytes (?:({_SIZE})-{_SIZE}|\*)/({_SIZE}|\*)", (value or "").strip())
    if not m:
        return None, None
    start, total = m.groups()
    return (int(start) if start else None), (int(total) if total != "*" else None)


def _fetch(url: str, dest: Path, *, progress: bool, timeout: float) -> None:
    part = _part(dest)
    have = part.stat().st_size if part.is_file() else 0
    resp = _open(url, start=have, timeout=timeout)
    with resp:
        if resp.status == 416:  # we asked for bytes from `have` on, and there are none
            _, total = _content_range(resp.headers.get("Content-Range"))
            if total == have:
                _finish(part, dest)
                return
            part.unlink()  # the .part is longer than the file: not ours to trust, start again
            raise _Interrupted("the partial file did not match the server's; restarting")
        start, total = _content_range(resp.headers.get("Content-Range"))
        if resp.status == 206 and start == have:
            mode = "ab"  # the server continues where we stopped
        else:
            have, mode = 0, "wb"  # a whole file (the server ignored Range, or there was nothing to resume)
            total = _int_header(resp.headers.get("Content-Length"))
        with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                         unit_divisor=1024, desc=dest.name, disable=not progress) as bar:
            try:
                while chunk := resp.read(_CHUNK):
                    f.write(chunk)
                    bar.update(len(chunk))
            except (http.client.IncompleteRead, ConnectionError, TimeoutError) as exc:
                raise _Interrupted(type(exc).__name__) from None
            finally:
                f.flush()
                os.fsync(f.fileno())
    size = part.stat().st_size
    if total is not None and size != total:
        raise _Interrupted(f"got {size:,} of {total:,} bytes")
    _finish(part, dest)


def _finish(part: Path, dest: Path) -> None:
    os.replace(part, dest)  # atomic: dest is either the old file or the complete new one


def _check_model_file(path: Path) -> None:
    """A last sanity check on the weights: the safetensors header must be valid (cheap: no data is read)."""
    if not path.is_file():
        return
    try:
        read_header(path)
    except SafetensorsError as exc:
        raise DownloadError(f"the downloaded {path.name} is not a valid safetensors file ({exc}); delete it "
                            "and download again") from None
