"""The modules setup.py compiles with mypyc (pyproject.toml's `[tool.auditor] compiled`)."""

from __future__ import annotations

import importlib.machinery
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def compiled_sources() -> list[Path]:
    with open(ROOT / "pyproject.toml", "rb") as file:
        listed = tomllib.load(file)["tool"]["auditor"]["compiled"]
    return [ROOT / path for path in listed]


def module_name(source: Path) -> str:
    return ".".join(source.relative_to(ROOT).with_suffix("").parts)


def extensions_of(source: Path) -> list[Path]:
    """The compiled modules built for `source`, beside it (an editable install's)."""
    stem = source.with_suffix("")
    return [
        Path(f"{stem}{suffix}")
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        if Path(f"{stem}{suffix}").exists()
    ]


def stale_modules() -> list[str]:
    """Sources edited after the compiled module beside them was built."""
    return [
        str(source.relative_to(ROOT))
        for source in compiled_sources()
        for built in extensions_of(source)
        if source.stat().st_mtime > built.stat().st_mtime
    ]
