"""``python -m tests.harness.cli_stub ARGS``: the real command line in a process of its own,
with the stand-ins the environment asks for, so a test can signal it as CI would.

- ``COMPAT_STUB_ENV=1``: a cell's env is this interpreter (cells run a stand-in torch, as
  ``fake_cells.cell_world`` sets up), no uv;
- ``COMPAT_STUB_UV=/path``: the program run as uv (a stand-in that hangs, say).

Everything else (signals, process groups, the report, the exit code) is the harness's own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> int:
    from compat.harness.commands import cli
    from compat.harness.execute import cell_runner
    from compat.harness.install import uv_cli
    from compat.harness.install.envs import EnvRecord

    if os.environ.get("COMPAT_STUB_ENV"):

        def fake_env(plan: object, *, log: Path, timeout: float) -> EnvRecord:
            return EnvRecord(Path(sys.executable), True, 0.0, "fake-key")

        cell_runner.ensure_env = fake_env  # type: ignore[assignment]
    uv = os.environ.get("COMPAT_STUB_UV")
    if uv:
        uv_cli._uv_bin = lambda: uv  # type: ignore[assignment]
    return cli.main()  # as the program does: sys.argv, the process ends with it


if __name__ == "__main__":
    sys.exit(main())
