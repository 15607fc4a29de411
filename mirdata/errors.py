"""The one exception type for user-facing errors: the CLI prints its message as one line and exits 1."""


class MirdataError(Exception):
    """Bad input or a failed precondition; the message names the file and the reason."""
