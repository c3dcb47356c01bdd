"""Errors of the vocoders: bad checkpoints and bad synthesis inputs."""

from speechkit.errors import SpeechkitError


class VocoderError(SpeechkitError, ValueError):
    """A vocoder checkpoint, config or input is unusable; the message names the file or argument, the rule and
    the value found."""
