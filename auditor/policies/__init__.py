"""Retention, legal holds, keyword lists and sensitive-data detectors, applied record by record.

policy = load_policy(path)                # ConfigError "FILE:LINE: field: what is wrong"
engine = PolicyEngine(policy, now_ms)     # compiles everything once per run
until, verdict, findings = engine.evaluate(record)  # retain_until_ms, RetentionVerdict, findings
policy.sha256                             # of the file's bytes, for bag-info
"""

from auditor.policies.engine import Evaluation, PolicyEngine
from auditor.policies.loading import load_policy
from auditor.policies.model import Policy
from auditor.policies.retention import RetentionVerdict

__all__ = ["Evaluation", "Policy", "PolicyEngine", "RetentionVerdict", "load_policy"]
