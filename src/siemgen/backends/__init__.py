"""Query backends of siemgen's own, for targets that have no pySigma backend on PyPI."""
