"""Write ``errors.ErrorKind``'s values into ``results.schema.json`` as the enum of a cell's
``install.error_kind``; ``--check`` only says whether they differ (exit 1).

The enum is generated, never edited by hand: ``tests/harness/test_schema.py`` fails when
it and ``ErrorKind`` part.

    python scripts/schema_error_kinds.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "compat" / "harness" / "results" / "results.schema.json"


def error_kind_node(schema: dict[str, Any]) -> dict[str, Any]:
    """The sub-schema of ``cell.install.error_kind``."""
    return schema["$defs"]["cell"]["properties"]["install"]["properties"]["error_kind"]  # type: ignore[no-any-return]


def generated(text: str) -> str:
    """The schema file's text with the enum of ``error_kind`` made ``ErrorKind``'s."""
    sys.path.insert(0, str(ROOT))
    from compat.harness.errors import ErrorKind

    schema = json.loads(text)
    error_kind_node(schema)["enum"] = [kind.value for kind in ErrorKind]
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    text = SCHEMA.read_text(encoding="utf-8")
    wanted = generated(text)
    if wanted == text:
        return 0
    if args.check:
        print(f"{SCHEMA}: error_kind's enum is not ErrorKind's (run {Path(__file__).name})")
        return 1
    SCHEMA.write_text(wanted, encoding="utf-8")
    print(f"wrote {SCHEMA}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
