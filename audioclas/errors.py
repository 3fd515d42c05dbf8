"""Errors that reach the user as one readable line, never as a traceback; names made safe to show.

An input's problem has a kind by type (``InputTooLarge``, ``UnsupportedInput``, else plain ``InputError``), which
the service maps to an HTTP status (``service.errors.http_status``)."""

from __future__ import annotations

import re

# Control characters (a terminal escape sequence starts with one: ESC), line and paragraph separators,
# bidirectional overrides, and lone surrogates (undecodable bytes, as os.fsdecode and tarfile keep them).
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` safe to show on one line of a terminal, a log, JSON or a CSV file: what could hide, move or clear
    text, or cannot be encoded, becomes a visible escape: ESC becomes ``\\x1b``, a newline ``\\x0a``, an
    undecodable byte 0xFF ``\\xff``. Names from files, archives and clients pass through it before they are ever
    shown."""
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, kept as a surrogate by the "surrogateescape" handler
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class AudioclasError(Exception):
    """Base class: ``str(error)`` is a complete message for a person."""


class OptionError(AudioclasError, ValueError):
    """An option's value is out of range or unknown: a usage error (exit status 2 on the command line)."""


class InputError(AudioclasError):
    """One input (file, archive member, URL, buffer) could not be used.

    ``source`` names the input as the user gave it; ``problem`` says what is wrong with it (both ``printable``).
    """

    def __init__(self, source: str, problem: str) -> None:
        source, problem = printable(source), printable(problem)
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem

    def renamed(self, source: str) -> InputError:
        """The same problem, of the same kind, for the input shown as ``source``."""
        return type(self)(source, self.problem)


class InputTooLarge(InputError):
    """The input passes a bound: its size, its length, or how many files or members it holds."""


class BytesOverLimit(InputTooLarge):
    """An archive member, or all that an archive expands to, passes its bound in bytes (``InputLimits``), so that a
    caller that lowered that bound to the room it has can tell running out of room from the other refusals."""


class UnsupportedInput(InputError):
    """The input is not audio we can decode: an unknown format, no audio stream, a playlist."""


class WeightsError(AudioclasError):
    """The pretrained checkpoint is missing, unreadable or fails its checksum."""
