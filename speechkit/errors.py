"""Exception types for bad user input.

Every error a user can cause (a bad file, a bad argument, a bad checkpoint) is a :class:`SpeechkitError` whose
message names the file or argument, the rule that was broken and the value found. The CLI prints these messages
without a traceback.
"""


class SpeechkitError(Exception):
    """Base class of the errors speechkit raises for bad user input."""


class FileFormatError(SpeechkitError, ValueError):
    """A file exists but does not hold what it should (corrupt, truncated, another format); the message names it."""


class DataError(SpeechkitError, ValueError):
    """Training data that cannot be used (an empty or too short corpus, a record whose parts disagree); the message
    names the file or record and the rule."""
