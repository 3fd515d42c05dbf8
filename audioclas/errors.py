"""Errors that reach the user as one readable line, never as a traceback."""


class AudioclasError(Exception):
    """Base class: ``str(error)`` is a complete message for a person."""


class OptionError(AudioclasError, ValueError):
    """An option's value is out of range or unknown: a usage error (exit status 2 on the command line)."""


class InputError(AudioclasError):
    """One input (file, archive member, URL, buffer) could not be used.

    ``source`` names the input as the user gave it; ``problem`` says what is wrong with it.
    """

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


class WeightsError(AudioclasError):
    """The pretrained checkpoint is missing, unreadable or fails its checksum."""
