"""The Instagram Direct channel as a value (its learner ids are ``ig:<IGSID>``)."""

from bot.model.events import Channel

INSTAGRAM = Channel(name="instagram", prefix="ig")
