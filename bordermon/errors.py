"""The one exception type the CLI turns into a one-line error."""


class BordermonError(Exception):
    """A user-facing failure: bad input, missing file, unreachable broker."""
