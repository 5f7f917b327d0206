"""Network fetches that cannot hang: a timeout on every socket operation, a bounded retry, then
one error naming the URLs, the folder to fill by hand and the MD5s expected.

torchvision's downloads open sockets without a timeout, so `retrying` sets the process's default
socket timeout around the call (restored afterwards). Settings, for slow links or tests:
REPRO_NET_TIMEOUT (seconds per connect or read, default 30) and REPRO_NET_TRIES (default 3).
Files a failed attempt left in the target folder are removed, so no half-written download is
later mistaken for data.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence, TypeVar

from repro.errors import ReproError

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_TRIES = 3
T = TypeVar("T")


def net_settings() -> tuple[float, int]:
    """(timeout in seconds, number of tries) from the environment, checked."""
    raw_timeout = os.environ.get("REPRO_NET_TIMEOUT", str(DEFAULT_TIMEOUT_S))
    raw_tries = os.environ.get("REPRO_NET_TRIES", str(DEFAULT_TRIES))
    try:
        timeout, tries = float(raw_timeout), int(raw_tries)
    except ValueError:
        timeout = tries = 0
    if not (timeout > 0 and tries > 0):
        raise ReproError(f"REPRO_NET_TIMEOUT={raw_timeout!r} / REPRO_NET_TRIES={raw_tries!r}: need "
                         "a positive number of seconds and a positive whole number of tries")
    return timeout, tries


@contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def retrying(action: Callable[[], T], what: str, files: Sequence[tuple[str, str]],
             folder: str | Path, outputs: Sequence[Path] = ()) -> T:
    """Run `action` (a download into `folder`) under the socket timeout, up to the configured
    number of tries; then one ReproError naming each (url, md5) of `files` and `folder`.
    Each of `outputs` (the files and folders the download writes) that was not there before is
    removed after a failed try."""
    timeout, tries = net_settings()
    folder = Path(folder)
    new = [p for p in map(Path, outputs) if not p.exists()]
    detail = ""
    for attempt in range(1, tries + 1):
        try:
            with socket_timeout(timeout):
                return action()
        except Exception as err:  # network, mirror and integrity failures come in many types
            detail = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
            for leftover in new:
                _remove(leftover)
            if attempt < tries:
                time.sleep(min(timeout, 2.0 ** (attempt - 1)))
    wanted = ", ".join(f"{url} (md5 {md5})" for url, md5 in files)
    raise ReproError(
        f"could not download {what}: {tries} tries with a {timeout:g} s timeout failed (last: "
        f"{detail}). Fetch by hand {wanted} into {folder}, or retry on a working network "
        "(REPRO_NET_TIMEOUT / REPRO_NET_TRIES set the timeout and the tries)")


def download_file(url: str, target: Path, md5: str) -> None:
    """One download to `target`, written via a temporary name and MD5-checked before it lands."""
    tmp = target.with_name(f".{target.name}.part")
    try:
        timeout, _ = net_settings()
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
            digest = hashlib.md5()
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
        if digest.hexdigest() != md5:
            raise ValueError(f"downloaded bytes have md5 {digest.hexdigest()}, expected {md5}")
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
