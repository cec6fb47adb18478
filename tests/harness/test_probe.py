from __future__ import annotations

from compat.harness.commands.probe import render_probe
from compat.harness.config.matrix import Cell


def test_probe_grid_keeps_every_value_verbatim() -> None:
    cells = [Cell("3.11", "2.8.0", "torch.ao"), Cell("3.11", "2.13.0", "torchao", "0.18.0")]
    found = [
        {"status": "ok", "from_node.shared_records": "False", "pt2e.keys": "linear,conv," * 6},
        {"status": "ok", "from_node.shared_records": "True"},
    ]
    text = render_probe(cells, found)
    row = next(line for line in text.splitlines() if line.startswith("from_node.shared"))
    assert row.split()[1:] == ["False", "True"]
    assert "linear,conv" in text
    assert all(len(part) <= 28 for line in text.splitlines()[3:] for part in line.split())


def test_probe_grid_of_many_cells_is_banded() -> None:
    cells = [Cell("3.11", f"2.{minor}.0", "torch.ao") for minor in range(2, 11)]
    found = [{"status": "ok", "capture.api": "export_for_training(strict=True)"}] * len(cells)
    text = render_probe(cells, found, width=120)
    titles = [line for line in text.splitlines() if line.startswith("cells ")]
    assert titles[0].startswith("cells 1-")
    assert titles[-1].endswith(" of 9")
    assert max(len(line) for line in text.splitlines()) <= 120
    assert text.count("capture.api") == len(titles)  # every band repeats the labels


def test_cells_that_cannot_exist_are_listed_not_probed() -> None:
    cells = [
        Cell("3.11", "2.8.0", "torch.ao"),
        Cell("3.11", "2.13.0", "torch.ao", not_applicable="torch.ao pt2e was removed"),
    ]
    found = [
        {"status": "ok", "pt2e.resolved": "torch.ao"},
        {"status": "not applicable: torch.ao pt2e was removed"},
    ]
    text = render_probe(cells, found)
    assert "torch2.13.0" not in text.split("Not applicable")[0]
    assert "  torch2.13.0-torch.ao-py3.11: torch.ao pt2e was removed" in text
