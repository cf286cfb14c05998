"""claimradar: the front door (CLI and settings) of the claims abuse-detection system."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("claimradar")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
