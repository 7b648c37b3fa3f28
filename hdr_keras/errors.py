"""The one error style of the commands and the API for a problem with the request as a whole."""


class UsageError(ValueError):
    """A problem with the command or call as a whole (a flag, a preset, a runtime, the weights), not
    with one input file. The message is one line naming what is wrong; commands print it without a
    traceback and exit with status 2."""
