"""The Instagram Direct Send API limits (Messenger Platform for Instagram), named with their units. Plain numbers.

Checked against Meta's Instagram Messaging pages (late 2026); when Meta's docs change, change the number
here and nowhere else. Sources:

* [IG-SEND] Instagram Messaging, "Send a Message":
  https://developers.facebook.com/documentation/business-messaging/instagram-messaging/features/send-message
  ("Text message must be less than 1000 characters"; "Message text must be UTF-8 and be a 1000 bytes
  or less"; media: images png/jpeg up to 8 MB, video mp4/ogg/avi/mov/webm and audio aac/m4a/wav/mp4
  up to 25 MB; the call is ``POST /me/messages`` with the Page access token).
* [IG-QR] Instagram Messaging, "Quick Replies":
  https://developers.facebook.com/documentation/business-messaging/instagram-messaging/features/quick-replies
  ("A maximum of 13 quick replies ... up to 20 characters before being truncated. Quick replies only
  support plain text." and "This feature is currently not available on desktop.")
* [IG-TEMPLATES] Instagram Messaging, "Button Template" and "Generic Template" (up to three buttons;
  both "not available in the web version"): .../instagram-messaging/button-template, .../generic-template
"""

from __future__ import annotations

# Both rules of [IG-SEND] hold for every text part: fewer than 1000 characters, at most 1000 UTF-8 bytes.
# An accented letter is 2 bytes and an emoji 4, so an Italian text reaches the byte limit first.
IG_TEXT_CHARS = 999  # message.text: "less than 1000 characters" [IG-SEND]
IG_TEXT_UTF8_BYTES = 1000  # message.text: "UTF-8 and ... 1000 bytes or less" [IG-SEND]
IG_QUICK_REPLIES_MAX = 13  # message.quick_replies [IG-QR]
IG_QUICK_REPLY_TITLE_CHARS = 20  # quick_replies[].title; Instagram truncates longer titles [IG-QR]
# The payload's limit is not restated on the Instagram pages; it is the Send API's quick reply payload,
# documented for Messenger (docs/platform.md §7).
IG_PAYLOAD_CHARS = 1000
IG_ATTACHMENT_TYPES = ("image", "video", "audio")  # what "Send a Message" lists for freeform media [IG-SEND]
