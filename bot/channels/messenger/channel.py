"""The Messenger channel as a value (its learner ids are ``ms:<user id>``)."""

from bot.model.events import Channel

MESSENGER = Channel(name="messenger", prefix="ms")
