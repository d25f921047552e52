"""siemgen: build Sigma rules into tested SIEM content and documentation pages."""

__version__ = "0.1.0"
