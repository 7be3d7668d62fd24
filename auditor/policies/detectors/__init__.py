"""Sensitive-data detectors, one class a file behind `interface.Detector`; `DETECTORS` by name."""

from __future__ import annotations

from auditor.policies.detectors.bank_card import BankCardDetector
from auditor.policies.detectors.email import EmailDetector
from auditor.policies.detectors.interface import Candidate, Detector
from auditor.policies.detectors.ipv4 import Ipv4Detector
from auditor.policies.detectors.mobile import MobileDetector
from auditor.policies.detectors.resident_id import ResidentIdDetector
from auditor.policies.detectors.url import UrlDetector

DETECTORS: dict[str, type[Detector]] = {
    cls.name: cls
    for cls in (
        MobileDetector,
        ResidentIdDetector,
        BankCardDetector,
        EmailDetector,
        Ipv4Detector,
        UrlDetector,
    )
}

__all__ = ["DETECTORS", "Candidate", "Detector"]
