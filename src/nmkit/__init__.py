"""nmkit: command-line tools for recent numerical-ML research methods."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nmkit")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+src"
