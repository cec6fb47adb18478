"""Cell-side shims: one uniform pt2e / export / FX-metadata API over every torch + torchao.

Each submodule answers one question ("where does X live in this torch, what shape does Y
have"), imports torch lazily, and records the route it took in :mod:`compat.shims.routes`
so a report can say *why* a cell behaved as it did. Nothing here imports ``compat.harness``.
"""
