"""Paths of the repository's own data, built from this file's location."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "sigma"
CANONICAL = RULES / "aws" / "cloudtrail" / "aws_iam_policy_changed.yml"
GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
TEMPLATES = REPO / "templates"
# Community rules used as real input; tests that need them skip when the folder is absent.
CORPUS = REPO.parent / "shared" / "corpus" / "sigmahq-aws-cloudtrail"

# Every query file and page that a build writes for the canonical rule.
CANONICAL_OUTPUTS = [
    "splunk/aws_iam_policy_changed.spl",
    "elastic/aws_iam_policy_changed.lucene",
    "elastic/aws_iam_policy_changed.esql",
    "elastic/aws_iam_policy_changed.eql",
    "athena/aws_iam_policy_changed.sql",
    "docs/aws_iam_policy_changed.md",
    "docs/index.md",
]
