"""Adds the top-level schemas/, report_templates/ and policies.example.yaml to the wheel, and
compiles the policy engine's per-record path and the report's per-finding path with mypyc.

The data files stay at the top of the repository where people look for them (DESIGN.md) and
ship inside the package, so `pip install .` gives a working `auditor` (see
`auditor/resources.py`).

The modules listed in pyproject.toml's `[tool.auditor] compiled` run once per record or
finding; they are plain Python that mypyc compiles to C extensions, the way mypy and black
ship themselves.
`AUDITOR_PURE_PYTHON=1` at install time leaves them interpreted. Either way the same source
runs, and the tests check that the two agree.
"""

import os
import shutil
import sys
import tomllib
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py


class BuildWithExamplePolicy(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "auditor" / "examples"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2("policies.example.yaml", target / "policies.example.yaml")


class BuildCompiled(build_ext):
    """Says what to do when compiling fails: the compiler's own error names no way out."""

    def run(self) -> None:
        try:
            super().run()
        except Exception:
            print(
                "error: compiling the per-record modules (policies, report) with mypyc failed; "
                "install a C compiler and the Python headers (Debian: gcc python3-dev), or "
                "set AUDITOR_PURE_PYTHON=1 to install them interpreted (slower, same results)",
                file=sys.stderr,
            )
            raise


def compiled_extensions() -> list:
    with open("pyproject.toml", "rb") as file:
        modules = tomllib.load(file)["tool"]["auditor"]["compiled"]
    if os.environ.get("AUDITOR_PURE_PYTHON"):
        # An editable install compiles in place, and Python imports a compiled module before
        # the source beside it: an earlier compiled install's would go on running.
        for suffix in EXTENSION_SUFFIXES:
            for built in [Path(module).with_suffix(suffix) for module in modules]:
                built.unlink(missing_ok=True)
            Path("auditor_native__mypyc" + suffix).unlink(missing_ok=True)
        return []
    from mypyc.build import mypycify

    return mypycify(modules, opt_level="3", group_name="auditor_native")


setup(
    packages=[
        *find_packages(include=["auditor", "auditor.*"]),
        "auditor.schemas",
        "auditor.report_templates",
    ],
    cmdclass={"build_py": BuildWithExamplePolicy, "build_ext": BuildCompiled},
    ext_modules=compiled_extensions(),
)
