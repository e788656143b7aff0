"""Errors core raises; the CLI turns them into one-line messages and exit codes."""


class NmkitError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class InputError(NmkitError):
    """Bad input from the user: a file, a field, an argument. Exit code 2."""

    exit_code = 2


class ConfigError(InputError):
    """A recipe or flag value that does not fit the command's schema."""


class RunError(NmkitError):
    """Failure at run time (numerical trouble, a device that went away). Exit code 1."""
