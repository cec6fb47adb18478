"""torch-compat-matrix: run one test core across many torch / torchao versions.

Two sides that never mix:

* :mod:`compat.shims` runs inside a cell, next to one torch, and answers where an API
  lives in that version (it imports torch lazily).
* :mod:`compat.harness` runs on the host: it plans cells, drives them and reports.
  It never imports torch.

:mod:`compat.pytest_plugin` is the one bridge between them.
"""

__version__ = "0.1.0"
