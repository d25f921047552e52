"""pySigma plugin entry for the siemgen Athena pipelines (``sigma convert -p athena-...``)."""

from siemgen.pipelines.athena import (
    athena_cloudtrail_pipeline,
    athena_cloudtrail_projection_pipeline,
    athena_security_lake_pipeline,
)

pipelines = {
    "athena-cloudtrail": athena_cloudtrail_pipeline,
    "athena-cloudtrail-projection": athena_cloudtrail_projection_pipeline,
    "athena-security-lake": athena_security_lake_pipeline,
}
