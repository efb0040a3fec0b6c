"""HTTP route for an Open Day's calendar file, behind an unguessable URL.

``GET /open-days/<event>/<ticket>.ics`` -> the event as an iCalendar file (RFC 5545), for the learner
whose seat carries that ticket (256 random bits, ``bot.storage.open_day_ledger``): the link is handed to
the Graph API as a WhatsApp document / Messenger file when the seat is confirmed. A ticket never issued,
or given up with the seat, answers 404; Redis unreachable, 503. Same privacy headers as the certificates.

The file is written by **icalendar** (a well-kept RFC 5545 library: escaping, 75-octet line folding, the
``VTIMEZONE`` for the event's ``TZID``), not by hand: calendar apps are strict about all three.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime

import icalendar
import redis
from flask import Blueprint, Response, current_app, request

from bot.flows.spec import OpenDay
from bot.storage.open_day_ledger import OpenDayLedger
from bot.web.certificates import PRIVATE_HEADERS

REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)
_ID = re.compile(r"[a-z][a-z0-9_]{0,63}")
_TICKET = re.compile(r"[A-Za-z0-9_-]{20,100}")
PRODUCT_ID = "-//Bottega//Business Open Days//IT"


def calendar_file(event: OpenDay, *, lang: str, stamp_ms: int, uid_domain: str = "bottega") -> bytes:
    """The ``.ics`` bytes of ``event`` in ``lang``: one VEVENT at its local start in its own time zone."""
    zone = zoneinfo.ZoneInfo(event.time_zone)
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    entry = icalendar.Event()
    entry.add("uid", f"{event.id}@{uid_domain}")
    entry.add("dtstamp", datetime.fromtimestamp(stamp_ms / 1000, tz=UTC))
    entry.add("dtstart", datetime.fromtimestamp(event.start_ms / 1000, tz=zone))
    entry.add("dtend", datetime.fromtimestamp(event.end_ms / 1000, tz=zone))
    entry.add("summary", event.title.get(lang))
    description = event.description.get(lang)
    if event.online_url:
        description += f"\n\n{event.online_url}"
        entry.add("url", event.online_url)
    entry.add("description", description)
    entry.add("location", event.address or event.online_url)
    calendar.add_component(entry)
    start = datetime.fromtimestamp(event.start_ms / 1000, tz=zone).date()
    # the VTIMEZONE's rules around the event only (the default spans 1970-2038: 6 KB of dates)
    calendar.add_missing_timezones(first_date=start.replace(month=1, day=1), last_date=start.replace(
        year=start.year + 1, month=12, day=31))
    return bytes(calendar.to_ical())


def blueprint(client: redis.Redis) -> Blueprint:
    """The calendar route, reading tickets through ``client`` and the event from the live course."""
    routes = Blueprint("open_days", __name__)
    ledger = OpenDayLedger(client)

    @routes.get("/open-days/<event_id>/<ticket>.ics")
    def calendar(event_id: str, ticket: str) -> Response:
        not_found = Response("not found", 404, mimetype="text/plain", headers=PRIVATE_HEADERS)
        if not _ID.fullmatch(event_id) or not _TICKET.fullmatch(ticket):
            return not_found
        try:
            holder = ledger.holder(event_id, ticket)
        except REDIS_DOWN:
            return Response("temporarily unavailable", 503, mimetype="text/plain", headers={"Retry-After": "5"})
        engine = current_app.extensions["bottega"]["registry"].engine
        event = engine.course.open_day(event_id)
        if not holder or event is None:
            return not_found
        lang = "en" if request.args.get("lang") == "en" else "it"
        dispatcher = current_app.extensions["bottega"]["dispatcher"]
        body = calendar_file(event, lang=lang, stamp_ms=dispatcher.clock())
        headers = {**PRIVATE_HEADERS, "Content-Disposition": 'attachment; filename="open-day.ics"'}
        return Response(body, 200, mimetype="text/calendar", headers=headers)

    return routes
