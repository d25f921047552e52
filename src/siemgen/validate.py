"""Validate rules offline for ``siemgen check``; the code lives in ``siemgen.validation``."""

from siemgen.validation import (
    Exclusion,
    Finding,
    Mode,
    Severity,
    ValidationConfig,
    ValidatorStatus,
    load_config,
    validate_collection,
    validator_report,
)

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
