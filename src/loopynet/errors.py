"""The errors that mean bad input, settings that cannot work, or a run that cannot go on because of them.

Every such error is a `UserError`: the CLI prints its message as one line and exits with code 2. Any
other exception is a bug in loopynet and keeps its traceback. The subclasses live where the input is
checked (CorpusError in loopynet.data.corpus, VectorsError in loopynet.data.vectors, ...); most also
subclass the built-in exception the check used to raise (ValueError, OSError, RuntimeError), so
`except ValueError` keeps working.
"""


class UserError(Exception):
    """Bad input or settings; the message says what is wrong and, where it can, how to fix it."""


class UsageError(UserError):
    """Command-line options that cannot apply together (e.g. `summary FOLDER --units 100`)."""


class InputError(UserError, ValueError):
    """A value given by the user that loopynet cannot use (a file that is not UTF-8, unknown cells, ...)."""
