"""Cell-side shims: one uniform pt2e / export / FX-metadata API over every torch + torchao.

Each submodule answers one question ("where does X live in this torch, what shape does Y
have"), imports torch lazily, and records the route it took in :mod:`compat.shims.routes`
so a report can say *why* a cell behaved as it did. Nothing here imports ``compat.harness``.
"""

# The public shim API's version (docs/shims-api.md): a minor bump adds names or routes, a
# major bump changes what an existing name returns. Tests may check it to need a feature.
SHIMS_API = "1.1"  # 1.1: snapshot, routes.adapted
