"""Retention, legal holds, keyword lists and sensitive-data detectors, applied record by record.

policy = load_policy(path)                # ConfigError "FILE:LINE: field: what is wrong"
engine = PolicyEngine(policy, now_ms)     # compiles everything once per run
until, verdict, findings = engine.evaluate(record)  # retain_until_ms, RetentionVerdict, findings
policy.sha256                             # of the file's bytes, for bag-info

These names are imported when first asked for (PEP 562): `auditor due` reads the model, the
retention rules and the scopes, and has no use for the engine's automata or the schemas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditor.policies.engine import Evaluation, PolicyEngine
    from auditor.policies.loading import load_policy
    from auditor.policies.model import Policy
    from auditor.policies.retention import RetentionVerdict

__all__ = ["Evaluation", "Policy", "PolicyEngine", "RetentionVerdict", "load_policy"]
_HOMES = {
    "Evaluation": "engine",
    "PolicyEngine": "engine",
    "load_policy": "loading",
    "Policy": "model",
    "RetentionVerdict": "retention",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
