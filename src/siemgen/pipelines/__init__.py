"""pySigma processing pipelines that map CloudTrail Sigma fields to each target's names."""
