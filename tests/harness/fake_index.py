"""A package index on loopback: PEP 503 pages shaped like PyTorch's, tiny real wheels.

The pages follow the shape of PyTorch's listings (relative hrefs, ``%2B`` for the local
version's ``+``, no sha256 fragment on nightlies, ``data-requires-python``), modelled on
a recorded nightly listing; this machine cannot reach the real indexes to record them.
The wheels are real and installable: a ``torch`` package whose ``__version__`` and
``version.git_version`` say which build it is.

``write_json_listing`` writes the other form, the default index's PEP 691 JSON page with
PEP 700 upload times, the only form that tells uv's ``--exclude-newer`` when a file came.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import http.server
import io
import json
import threading
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from urllib.parse import quote

__all__ = ["Listing", "build_wheel", "serve", "write_json_listing", "write_listing"]

JSON_PAGE = "index.json"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def _record_line(name: str, data: bytes) -> list[str]:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [name, f"sha256={digest}", str(len(data))]


def build_wheel(
    folder: Path,
    project: str,
    version: str,
    tag: str,
    git_version: str = "0" * 40,
    requires: Sequence[str] = (),
) -> Path:
    """A minimal valid wheel of ``project`` (torch or torchao) at ``version``."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = f"{project}-{version}"
    filename = f"{dist}-{tag}.whl"
    package = project.replace("-", "_")
    files = {
        f"{package}/__init__.py": (f'__version__ = "{version}"\nfrom . import version\n').encode(),
        f"{package}/version.py": (
            f'__version__ = "{version}"\ngit_version = "{git_version}"\ncuda = None\n'
            "debug = False\n"
        ).encode(),
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n"
            + "".join(f"Requires-Dist: {r}\n" for r in requires)
        ).encode(),
        f"{dist}.dist-info/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: fake-index\nRoot-Is-Purelib: false\nTag: {tag}\n"
        ).encode(),
    }
    rows = [_record_line(name, data) for name, data in files.items()]
    rows.append([f"{dist}.dist-info/RECORD", "", ""])
    record = io.StringIO()
    csv.writer(record, lineterminator="\n").writerows(rows)
    files[f"{dist}.dist-info/RECORD"] = record.getvalue().encode()
    path = folder / filename
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


@dataclass(frozen=True)
class Listing:
    project: str
    wheels: Sequence[Path]
    with_sha256: bool = False
    requires_python: str | None = ">=3.10"


def write_listing(index_dir: Path, listing: Listing) -> None:
    """``<index>/<project>/index.html`` linking to wheels that live in ``<index>/``."""
    page = index_dir / listing.project / "index.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    links = []
    for wheel in listing.wheels:
        href = f"../{quote(wheel.name)}"
        if listing.with_sha256:
            href += f"#sha256={hashlib.sha256(wheel.read_bytes()).hexdigest()}"
        attrs = (
            f' data-requires-python="{listing.requires_python.replace(">", "&gt;")}"'
            if listing.requires_python
            else ""
        )
        links.append(f'<a href="{href}"{attrs}>{wheel.name}</a><br/>')
    page.write_text(
        "<!DOCTYPE html>\n<html>\n<body>\n<h1>Links for "
        f"{listing.project}</h1>\n" + "\n".join(links) + "\n</body>\n</html>\n",
        encoding="utf-8",
    )


def write_json_listing(index_dir: Path, project: str, uploads: Mapping[Path, datetime]) -> None:
    """``<index>/<project>/index.json``: a PEP 691 page giving each wheel's upload time."""
    files = [
        {
            "filename": wheel.name,
            "url": f"../{quote(wheel.name)}",
            "hashes": {"sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()},
            "upload-time": uploaded.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        for wheel, uploaded in uploads.items()
    ]
    page = index_dir / project / JSON_PAGE
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(
        json.dumps(
            {
                "meta": {"api-version": "1.1"},
                "name": project,
                "versions": sorted({w.name.split("-")[1] for w in uploads}),
                "files": files,
            }
        ),
        encoding="utf-8",
    )


class _Quiet(http.server.SimpleHTTPRequestHandler):
    auth: str | None = None  # "user:password": every request must carry it (HTTP basic)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self) -> io.BytesIO | None:  # type: ignore[override]
        """A folder with an ``index.json`` is a JSON project page."""
        if self.auth is not None:
            expected = "Basic " + base64.b64encode(self.auth.encode()).decode()
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="fake-index"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
        page = Path(self.translate_path(self.path)) / JSON_PAGE
        if not self.path.endswith("/") or not page.is_file():
            return super().send_head()  # type: ignore[return-value]
        data = page.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", JSON_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        return io.BytesIO(data)


@contextmanager
def serve(root: Path, *, auth: str | None = None) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 (a free port); yields the base URL. With ``auth``
    (``"user:password"``) every request without those HTTP basic credentials gets 401."""
    handler = type("_Handler", (_Quiet,), {"auth": auth})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(handler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
