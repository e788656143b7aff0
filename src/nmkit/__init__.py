"""nmkit: command-line tools for recent numerical-ML research methods."""

__version__ = "0.1.0"  # the one place the version is written; pyproject.toml reads it from here
