"""``python -m compat ...``: the harness command line."""

import sys

from compat.harness.commands.cli import main

sys.exit(main())
