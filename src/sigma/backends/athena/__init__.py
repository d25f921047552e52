"""pySigma plugin entry for the siemgen Athena backend (``sigma convert -t athena``)."""

from siemgen.backends.athena import AthenaBackend

backends = {"athena": AthenaBackend}
