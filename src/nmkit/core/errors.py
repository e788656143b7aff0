"""Errors core raises; the CLI turns them into one-line messages and exit codes."""


class NmkitError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class InputError(NmkitError):
    """Bad input from the user: a file, a field, an argument. Exit code 2."""

    exit_code = 2


class ConfigError(InputError):
    """A recipe or flag value that does not fit the command's schema."""


class Interrupted(NmkitError):
    """A run stopped by SIGINT (exit 130) or SIGTERM (exit 143) after saving what lets it resume."""

    def __init__(self, message: str, signum: int = 2) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where SIGINT raises KeyboardInterrupt, so both take the same clean stop."""


class RunError(NmkitError):
    """Failure at run time (numerical trouble, a device that went away). Exit code 1."""


def reason(exc: BaseException, limit: int = 100) -> str:
    """The first line of an exception's message (its type when the message is empty), without terminal escape
    codes, cut at a word boundary to at most ``limit`` characters."""
    import re

    line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    line = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line)
    if len(line) <= limit:
        return line
    cut = line[: limit - 3].rsplit(" ", 1)[0]
    return cut + "..."
