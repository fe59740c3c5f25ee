"""Networks by URL: ``--network https://…`` and ``stylegan.load(url)`` download the file once into
``<cache>/networks/`` (:func:`stylegan.cache.cache_root`; ``$STYLEGAN_CACHE`` overrides it) and read it from
there afterwards, without another request.

A download goes to ``NAME.part`` beside its final name and is renamed only once it is complete and checked, so
the final name never holds half a file:

- **resumable**: an interrupted download keeps its ``.part``; the next try asks for the rest with an HTTP
  ``Range`` header (a server that ignores it sends the whole file again, which replaces the partial one);
- **checked**: a byte count short of ``Content-Length`` is reported and kept for resuming; a SHA-256 given
  (by a published name's entry, or a ``#sha256=HEX`` fragment on the URL) must match, else the file is
  discarded; content that is not a network file (an HTML page, a login form) is refused from its first bytes;
- **one line** for every failure (:class:`DownloadError`, a :class:`~stylegan.checkpoint.CheckpointError`),
  never a traceback; concurrent processes (``torchrun``) wait for each other through a lock file.

Only the standard library (``urllib``) is used. The downloaded file is then read like any local file, by the
same safe readers (nothing in it is executed).
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO, TextIO

from stylegan.cache import cache_root
from stylegan.checkpoint import CheckpointError
from stylegan.version import __version__

CHUNK = 1 << 20
TIMEOUT_S = 60


class DownloadError(CheckpointError):
    """A network URL that could not be downloaded, or whose content is not a network file."""


class _NotANetwork(DownloadError):
    """Content that is not a network file (its partial file is deleted)."""


def is_url(value) -> bool:
    """True for an ``http://`` or ``https://`` address."""
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


def split_hash(url: str) -> tuple[str, str | None]:
    """The URL without its fragment, and the SHA-256 a ``#sha256=HEX`` fragment pins (else None)."""
    base, _, fragment = url.partition("#")
    m = re.fullmatch(r"sha256=([0-9a-fA-F]{64})", fragment)
    return base, m.group(1).lower() if m else None


def downloads_dir() -> Path:
    """Where downloaded networks are kept: ``<cache>/networks``."""
    return cache_root() / "networks"


def cached_path(url: str) -> Path:
    """The file a URL is (or will be) downloaded to: ``<cache>/networks/<key>/<file name of the URL>``, the key a
    digest of the whole address (two URLs with the same file name do not collide; the suffix, which says the
    format, is kept)."""
    base, _ = split_hash(url)
    name = urllib.parse.unquote(Path(urllib.parse.urlsplit(base).path).name)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "network"
    return downloads_dir() / hashlib.sha256(base.encode()).hexdigest()[:16] / name


def download_url(url: str, sha256: str | None = None, progress: bool = True) -> Path:
    """The local copy of ``url``: the cached file when there is one (no request), else downloaded (resuming a
    partial one), checked and renamed into place, with a progress bar on stderr unless ``progress`` is False."""
    base, pinned = split_hash(url)
    sha256 = (sha256 or pinned or "").lower() or None
    final = cached_path(url)
    if final.is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(final.with_name(final.name + ".lock")):
        if not final.is_file():  # another process may have finished it while this one waited
            part = final.with_name(final.name + ".part")
            _fetch(base, part, sys.stderr if progress else None)
            _verify(base, part, sha256)
            os.replace(part, final)
    return final


@contextlib.contextmanager
def _exclusive(lock_path: Path):
    """Hold an exclusive lock on ``lock_path`` (where ``fcntl`` exists; elsewhere no lock)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _open(url: str, start: int):
    """The server's response for ``url`` from byte ``start`` on; HTTP and connection errors as one line."""
    headers = {"User-Agent": f"stylegan/{__version__}", "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416 and start:
            return None  # the partial file is not a prefix of what the server has now: start over
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}; nothing was downloaded") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise DownloadError(f"{url}: cannot download ({reason})") from None


def _fetch(url: str, part: Path, progress: TextIO | None) -> None:
    """Download ``url`` into ``part``, continuing it when the server honours the range request."""
    have = part.stat().st_size if part.is_file() else 0
    resp = _open(url, have)
    if resp is None:
        part.unlink()
        have, resp = 0, _open(url, 0)
    with resp:
        _refuse_page(url, resp)
        resumed = have > 0 and resp.status == 206
        if resumed and not resp.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
            raise DownloadError(f"{url}: the server answered the resume request with another range "
                                f"({resp.headers.get('Content-Range')}); delete {part} to start over")
        have = have if resumed else 0
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        try:
            with open(part, "ab" if resumed else "wb") as f:
                got = _copy(url, resp, f, have, total, _Progress(part.name.removesuffix(".part"), total, have,
                                                                 progress))
        except _NotANetwork:
            part.unlink(missing_ok=True)
            raise
    if total is not None and got != total:
        raise DownloadError(f"{url}: the download stopped at {got:,} of {total:,} bytes; the partial file "
                            f"{part} is kept and the next try resumes it")


def _copy(url: str, resp, f: BinaryIO, have: int, total: int | None, bar: "_Progress") -> int:
    """Copy the response body to ``f`` (the first bytes of a new file checked to be a network file); the
    number of bytes the file holds at the end."""
    try:
        while chunk := resp.read(CHUNK):
            if have == 0:
                _refuse_content(url, chunk)
            f.write(chunk)
            have += len(chunk)
            bar.update(have)
    except DownloadError:
        raise
    except (OSError, ValueError, http.client.HTTPException) as e:  # connection reset, timeout, incomplete read
        f.flush()
        bar.close()
        raise DownloadError(f"{url}: the download stopped at {have:,}"
                            + (f" of {total:,}" if total else "") + f" bytes ({e.__class__.__name__}); the partial "
                            f"file {f.name} is kept and the next try resumes it") from None
    bar.close()
    return have


def _is_network_head(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file) starts like a network file this package reads: a pickle
    (protocol 2 or later: the authors' .pkl, legacy torch files), a zip archive (torch.save's format) or a
    safetensors file (an 8-byte header length, then JSON)."""
    return head[:1] == b"\x80" or head[:4] == b"PK\x03\x04" or (len(head) > 8 and head[8:9] == b"{")


def _refuse_page(url: str, resp) -> None:
    """Refuse a response the server itself declares to be a web page."""
    ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if ctype in ("text/html", "application/xhtml+xml"):
        raise DownloadError(f"{url}: the server sent a web page ({ctype}), not a network file; refused")


def _refuse_content(url: str, head: bytes) -> None:
    """Refuse a download whose first bytes are not those of a network file."""
    if _is_network_head(head):
        return
    shown = head[:24].decode("latin-1").encode("unicode_escape").decode()
    raise _NotANetwork(f"{url}: the content is not a network file (it starts with {shown!r}); nothing was kept")


def _verify(url: str, part: Path, sha256: str | None) -> None:
    """Check the complete file's SHA-256 when one is known; a mismatch deletes it."""
    if sha256 is None:
        return
    h = hashlib.sha256()
    with open(part, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    if h.hexdigest() != sha256:
        part.unlink()
        raise DownloadError(f"{url}: SHA-256 {h.hexdigest()} does not match the expected {sha256}; the download "
                            "was discarded")


class _Progress:
    """A one-line progress bar (percentage, megabytes, speed) redrawn at most every 0.2 s, on ``stream``."""

    def __init__(self, name: str, total: int | None, start: int, stream: TextIO | None):
        self.name, self.total, self.start, self.stream = name, total, start, stream
        self.t0, self.last, self.done = time.monotonic(), 0.0, start

    def update(self, done: int) -> None:
        self.done = done
        if time.monotonic() - self.last >= 0.2:
            self._draw()

    def _draw(self) -> None:
        if self.stream is None:
            return
        self.last = now = time.monotonic()
        rate = (self.done - self.start) / max(now - self.t0, 1e-6) / 1e6
        size = f"{self.done / 1e6:.1f}/{self.total / 1e6:.1f} MB" if self.total else f"{self.done / 1e6:.1f} MB"
        pct = f"{100 * self.done // self.total:3d}% " if self.total else ""
        width = 30
        filled = width * self.done // self.total if self.total else 0
        bar = f"[{'#' * filled}{'.' * (width - filled)}] " if self.total else ""
        self.stream.write(f"\rdownloading {self.name} {bar}{pct}{size} {rate:.1f} MB/s")
        self.stream.flush()

    def close(self) -> None:
        if self.stream is not None:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()


__all__ = ["DownloadError", "cached_path", "download_url", "downloads_dir", "is_url", "split_hash"]
