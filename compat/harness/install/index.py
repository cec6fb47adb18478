"""What a package index offers: one project's files, read with a real PEP 503/691 client.

``pypi-simple`` speaks both the HTML (PEP 503) and JSON (PEP 691) forms, parses wheel
names and digests, and raises typed errors; PyTorch's indexes serve the HTML form,
often without a sha256 fragment. Every request here goes through ``requests`` (the
client ``pypi-simple`` itself uses): a GET of one page, or one file streamed to disk or
through a hash; a ``file:`` URL (a wheelhouse) is read from disk. Every network wait ends
at a stop (Ctrl-C, SIGTERM): ``processes.Stopped``, at once, not after the read's timeout.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from urllib.request import url2pathname

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from compat.harness import processes
from compat.harness.errors import ErrorKind, InstallError
from compat.harness.files import atomic_writer
from compat.harness.redact import redact

if TYPE_CHECKING:
    from pypi_simple import ProjectPage

__all__ = [
    "IndexFile",
    "IndexUnreachable",
    "Listings",
    "download",
    "list_wheels",
    "released_at",
    "sha256_of_url",
]

TIMEOUT = 30.0
_CHUNK = 1 << 20


class IndexUnreachable(InstallError):
    """The index did not answer, or answered with an error page."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorKind.INDEX_UNREACHABLE, message)


def _requests() -> ModuleType:
    """``requests``, imported on the first network read: a warm run reads no index, and
    the HTTP stack (with ``pypi-simple``'s models) is a third of the harness's start."""
    import requests

    return requests


@dataclass(frozen=True)
class IndexFile:
    filename: str
    url: str
    version: Version
    sha256: str | None
    requires_python: str | None
    # PEP 700 (JSON pages only): when the file reached the index. PyTorch's HTML pages and
    # find-links folders give none.
    upload_time: datetime | None = None


def list_wheels(
    index_url: str | None, project: str, *, timeout: float = TIMEOUT
) -> list[IndexFile]:
    """Every wheel of ``project`` on the index (``None``: the client's default index)."""
    client_args = {"endpoint": index_url.rstrip("/") + "/"} if index_url else {}
    endpoint = client_args.get("endpoint", "the default index")
    from pypi_simple import NoSuchProjectError, PyPISimple

    def read() -> ProjectPage:
        with PyPISimple(**client_args) as client:
            return client.get_project_page(project, timeout=timeout)

    try:  # in a thread the caller stops waiting on at a stop: a dead index holds up nothing
        page = processes.wait_for(read, what=f"the index {redact(endpoint)}")
    except NoSuchProjectError:
        return []
    except _requests().RequestException as exc:
        raise IndexUnreachable(
            f"{redact(endpoint)}: {type(exc).__name__}: {redact(str(exc))[:200]}"
        ) from None
    files: list[IndexFile] = []
    wanted = canonicalize_name(project)
    for package in page.packages:
        if package.package_type != "wheel" or package.version is None:
            continue
        try:
            name, version, _, _ = parse_wheel_filename(package.filename)
        except InvalidWheelFilename:
            continue
        if name != wanted:  # a flat find-links page lists every project's files
            continue
        files.append(
            IndexFile(
                package.filename,
                package.url,
                version,
                package.digests.get("sha256"),
                package.requires_python,
                package.upload_time,
            )
        )
    return files


def released_at(files: Iterable[IndexFile], version: str) -> datetime | None:
    """When ``version`` finished uploading: the latest upload time of its files.

    A release's wheels arrive over minutes to hours; its last file marks the moment the
    whole release was installable. None when no file of that version has a time.
    """
    wanted = Version(version)
    times = [f.upload_time for f in files if f.version == wanted and f.upload_time]
    return max(times, default=None)


class Listings:
    """One run's reading of the indexes: each project page is fetched once.

    Every cell of a run that asks for ``latest`` then names the same build, even if a
    new nightly lands mid-run, and an index that does not answer costs one timeout, not
    one per cell. Safe to share between the run's worker threads.
    """

    def __init__(self, lister: Callable[[str | None, str], list[IndexFile]] | None = None) -> None:
        self._lister = lister or list_wheels
        self._guard = threading.Lock()
        self._pages: dict[tuple[str | None, str], _Page] = {}

    def wheels(self, index_url: str | None, project: str) -> list[IndexFile]:
        with self._guard:
            page = self._pages.setdefault((index_url, project), _Page())
        with page.lock:
            if page.files is None and page.error is None:
                try:
                    page.files = self._lister(index_url, project)
                except IndexUnreachable as exc:
                    page.error = str(exc)
        if page.error is not None:
            raise IndexUnreachable(page.error)
        return list(page.files or [])


@dataclass
class _Page:
    lock: threading.Lock = field(default_factory=threading.Lock)
    files: list[IndexFile] | None = None
    error: str | None = None


def _chunks(url: str, *, timeout: float) -> Iterator[bytes]:
    """The bytes of ``url`` in 1 MiB chunks: a ``file:`` URL from disk, anything else by
    ``requests`` (the client the listings use), streamed."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        with open(url2pathname(parts.path), "rb") as handle:
            while chunk := handle.read(_CHUNK):
                yield chunk
        return
    requests = _requests()
    response = processes.wait_for(
        lambda: requests.get(url, stream=True, timeout=timeout), what=redact(url)
    )
    with response:
        response.raise_for_status()
        for chunk in response.iter_content(_CHUNK):
            if processes.stopping():
                raise processes.Stopped(f"stopped while reading {redact(url)}")
            yield chunk


def download(url: str, dest: Path, *, timeout: float = 600.0) -> str:
    """Stream ``url`` (http(s) or file) to ``dest``; return its sha256."""
    digest = hashlib.sha256()
    try:
        with atomic_writer(dest) as out:
            for chunk in _chunks(url, timeout=timeout):
                digest.update(chunk)
                out.write(chunk)
    except (_requests().RequestException, OSError) as exc:
        raise IndexUnreachable(f"{redact(url)}: {redact(str(exc))}") from None
    return digest.hexdigest()


def sha256_of_url(url: str, *, timeout: float = 600.0) -> str:
    """Hash a file the index gave no digest for, without keeping it."""
    digest = hashlib.sha256()
    try:
        for chunk in _chunks(url, timeout=timeout):
            digest.update(chunk)
    except _requests().RequestException as exc:
        raise IndexUnreachable(f"{redact(url)}: {redact(str(exc))}") from None
    return digest.hexdigest()
