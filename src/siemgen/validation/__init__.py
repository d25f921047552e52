"""Offline validation of Sigma rules: pySigma, SigmaHQ conventions and siemgen policy."""

from siemgen.validation.config import Exclusion, ValidationConfig, load_config
from siemgen.validation.findings import Finding, Severity
from siemgen.validation.registry import Mode, ValidatorStatus, validator_report
from siemgen.validation.runner import validate_collection

__all__ = [
    "Exclusion",
    "Finding",
    "Mode",
    "Severity",
    "ValidationConfig",
    "ValidatorStatus",
    "load_config",
    "validate_collection",
    "validator_report",
]
