"""The host side (never imports torch): plan cells, install their envs, run them, report.

Stages, each a package that imports only the ones below it (``[tool.importlinter]``)::

    commands                   the command line, one module per command
    reports  | execute         documents drawn from results | cells run in their envs
    install  | results         pins, locks and uv envs | outcomes, run folders, the gate
    config                     the matrix, channels, applicability rules
    errors | files | locations | redact      leaves: import nothing of the harness
"""
