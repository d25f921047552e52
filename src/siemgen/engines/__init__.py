"""Local query engines that run generated queries on CloudTrail test records."""
