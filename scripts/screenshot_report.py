"""Regenerate ``docs/matrix.png`` from a real run folder's ``matrix.html`` (headless Chromium).

    python scripts/screenshot_report.py reports/<run-id> [--out docs/matrix.png]
        [--width 1400] [--height 1800]

The picture in the README is this run's page as a browser draws it, so it cannot drift
from what the report writer produces: rerun this after a change to the page. A run made
with ``--baseline`` shows its diff against the baseline under the grid. Needs
``chromium`` (or ``chromium-browser``, ``google-chrome``) on PATH.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
PNG = b"\x89PNG\r\n\x1a\n"


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit(f"screenshot_report: none of {', '.join(BROWSERS)} is on PATH")


def screenshot(page: Path, out: Path, *, width: int, height: int, timeout: float = 120) -> None:
    """``page`` drawn by headless Chromium at ``width`` x ``height`` into ``out`` (PNG)."""
    with tempfile.TemporaryDirectory(prefix="compat-shot-") as profile:
        shot = Path(profile) / "shot.png"
        subprocess.run(
            [
                browser(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--screenshot={shot}",
                page.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        data = shot.read_bytes()
        if not data.startswith(PNG):
            raise SystemExit(f"screenshot_report: {browser()} wrote no PNG for {page}")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder (holds matrix.html)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "matrix.png")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1800)
    args = parser.parse_args(argv)
    page = args.run / "matrix.html"
    if not page.is_file():
        print(f"screenshot_report: {page}: no such file (give a run folder)", file=sys.stderr)
        return 2
    screenshot(page, args.out, width=args.width, height=args.height)
    print(f"{args.out}: {args.width}x{args.height} from {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
