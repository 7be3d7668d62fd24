"""Shared by the run, Dask and multi-app tests: what two runs must agree on byte for byte."""

from __future__ import annotations

from pathlib import Path


def payload(bag: Path) -> dict[str, bytes]:
    """Every file a run must reproduce byte for byte: the payload and the undated bag-info."""
    files = {
        str(path.relative_to(bag)): path.read_bytes()
        for path in sorted((bag / "data").rglob("*"))
        if path.is_file() and path.parent.name != "report"
    }
    info = (bag / "bag-info.txt").read_text().splitlines()
    files["bag-info.txt"] = "\n".join(
        line for line in info if not line.startswith("Bagging-Date")
    ).encode()
    return files
