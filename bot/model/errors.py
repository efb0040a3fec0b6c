"""One exception tree for Bottega, by the phase in which things go wrong (like httpx's ``_exceptions``)::

    BottegaError
    +-- ConfigError            start-up: a setting is missing or malformed (config.settings)
    +-- CourseError            the course as authored
    |   +-- FlowError          a flows folder fails the check: every problem with file, line, fix
    |   +-- UnknownTrigger     a tap that is no transition of the step (an old button)
    +-- ChannelError
    |   +-- UnknownChannel     a channel name or learner-id tag no folder registered (also a ValueError)
    +-- StorageError
    |   +-- ConcurrencyError   a learner's turn kept losing the optimistic-lock race (the webhook answers 503)
    +-- DeliveryError
    |   +-- GraphError         a send that did not return a message id (bot.delivery.graph has its tree)
    +-- ToolError              the authoring and dev tools
        +-- TranscriptError    a golden conversation is malformed
        +-- ScaffoldError      `bottega flows new` cannot write the module

Every message says what was expected, what came and what to do; none carries a phone number, a
message text or a secret.
"""

from __future__ import annotations


class BottegaError(Exception):
    """The base of every error Bottega raises on purpose."""


class ConfigError(BottegaError):
    """A required setting is missing or malformed; the message says which and how to fix it."""


class CourseError(BottegaError):
    """The course, as authored, cannot be served as asked."""


class ChannelError(BottegaError):
    """A channel cannot be found or used."""


class StorageError(BottegaError):
    """Redis did not let a learner's state be written as asked (connection errors stay redis-py's)."""


class DeliveryError(BottegaError):
    """A send to the Graph API did not go through."""


class ToolError(BottegaError):
    """An authoring or dev tool cannot do what it was asked."""
