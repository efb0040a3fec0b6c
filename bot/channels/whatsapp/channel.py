"""The Whatsapp channel as a value (its learner ids are ``wa:<user id>``)."""

from bot.model.events import Channel

WHATSAPP = Channel(name="whatsapp", prefix="wa")
