"""Adds the top-level schemas/, report_templates/ and policies.example.yaml to the wheel.

They stay at the top of the repository where people look for them (DESIGN.md) and ship inside
the package, so `pip install .` gives a working `auditor` (see `auditor/resources.py`).
"""

import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


class BuildWithExamplePolicy(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "auditor" / "examples"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2("policies.example.yaml", target / "policies.example.yaml")


setup(
    packages=[
        *find_packages(include=["auditor", "auditor.*"]),
        "auditor.schemas",
        "auditor.report_templates",
    ],
    cmdclass={"build_py": BuildWithExamplePolicy},
)
