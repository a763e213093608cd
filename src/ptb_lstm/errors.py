"""The one exception type the command line turns into a one-line message."""


class UserError(Exception):
    """A problem the user can fix (a path, a flag, a file); the message says how."""
