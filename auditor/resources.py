"""Where the schemas, report templates and example policy live, installed or in a checkout.

They sit at the top level of the repository (DESIGN.md) and ship in the wheel as
`auditor/schemas` and `auditor/report_templates`; an editable install reads the checkout's copy.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def _data_dir(name: str) -> Path:
    for candidate in (_PACKAGE / name, _CHECKOUT / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"the auditor's {name}/ folder is missing from this installation")


def schemas_dir() -> Path:
    return _data_dir("schemas")


def templates_dir() -> Path:
    return _data_dir("report_templates")


def example_policy() -> Path:
    """The commented example policy that `auditor demo` uses."""
    for candidate in (
        _PACKAGE / "examples" / "policies.example.yaml",
        _CHECKOUT / "policies.example.yaml",
    ):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("policies.example.yaml is missing from this installation")
