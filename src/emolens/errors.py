"""The one exception type a user can cause: the CLI prints its message as one line, with no traceback."""


class EmolensError(Exception):
    """Bad input or a bad request: the message says what was wrong and what to do."""
