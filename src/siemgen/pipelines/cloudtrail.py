"""Pieces shared by the CloudTrail pipelines of every target."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sigma.exceptions import SigmaTransformationError
from sigma.processing.transformations.base import FieldMappingTransformationBase

from siemgen import fields

CLOUDTRAIL_LOGSOURCE = {"product": "aws", "service": "cloudtrail"}


@dataclass
class CloudTrailFieldMapping(FieldMappingTransformationBase):
    """Rename each Sigma field to the target's name and reject fields the target lacks.

    ``mapper`` returns the target's name for a known CloudTrail field, or None when the target
    cannot search it; ``target`` names the target in error messages.
    """

    target: str
    mapper: Callable[[fields.CloudTrailField | fields.JsonPath], str | None]

    def apply_field_name(self, field: str | None) -> str | None:
        """Map one field name, raising SigmaTransformationError for an unknown field."""
        if field is None:
            return None
        known = fields.lookup(field)
        if known is None:
            raise SigmaTransformationError(
                f"field {field!r} is not a CloudTrail field that the {self.target} pipeline "
                "maps; check the spelling against the CloudTrail record reference"
            )
        if isinstance(known, fields.JsonPath) and not all(
            fields.key_name(key) for key in known.keys
        ):
            raise SigmaTransformationError(
                f"field {field!r} has an empty JSON key. Every key between dots needs a name, "
                "and '[]' goes right after the name of a key that holds an array, as in "
                "requestParameters.items[]"
            )
        mapped = self.mapper(known)
        if mapped is None:
            raise SigmaTransformationError(
                f"field {field!r} is not searchable on {self.target}: the target's CloudTrail "
                "data model does not index it"
            )
        return mapped
