"""The Messenger Platform, shared by Messenger (``object: "page"``) and Instagram Direct (``object: "instagram"``).

Instagram Direct is the Messenger Platform for Instagram: the webhook envelope (``entry[]``,
``messaging[]``/``standby[]``, ``sender``/``recipient``, timestamps) and the Send API bodies and answers
have the same shapes on both. What is the same lives here, once; what differs (the item kinds each
channel has, how a learner is addressed, the limits) stays in ``messenger/`` and ``instagram/``. No I/O.

* ``webhook``: the envelope walk into ``InboundEvent``s (``MessagingWebhook``), ids and times;
* ``content``: what a ``message``, ``postback`` or ``referral`` item says;
* ``send_api``: quick replies and the Send API's answer;
* ``dev_bodies``: the webhook bodies and Send API answers the dev tools play.
"""
