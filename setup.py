"""Adds the top-level schemas/ and report_templates/ folders to the wheel as data packages."""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["auditor", "auditor.*"]),
        "auditor.schemas",
        "auditor.report_templates",
    ],
)
