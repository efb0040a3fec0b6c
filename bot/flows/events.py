"""``events.yaml`` -> the Business Open Days and what Bottega says about them. No I/O.

::

    events:
      - id: od_2026_12                         # lowercase letters, digits, _ (it names the event's Redis keys)
        title: {it: "...", en: "..."}
        start: "2026-12-10T18:30"              # local time in time_zone, quoted
        time_zone: Europe/Rome                 # IANA name
        duration_minutes: 90
        online: "https://meet.example.org/od"  # and/or address: at least one
        address: "Camera di Commercio, Via ..., Milano"
        capacity: 40                           # seats; RSVPs past it join the waiting list
        audience: {channels: [whatsapp], languages: [it], business_types: [bakery], modules_done: [m1_contatto]}
        description: {it: "...", en: "..."}
        followup_module: m3_instagram          # the follow-up's button starts it
        recording: "https://..."               # optional: sent with the follow-up
    texts:                                     # OPEN_DAY_TEXT_KEYS
      open_day_invite: {it: "...", en: "..."}

Every problem names the file, line and column and how to fix it, like the rest of ``flows check``.
The engine (``bot.tutor.open_days``) announces, takes RSVPs and sends the reminders; the seats are
counted in Redis (``bot.storage.open_day_ledger``).
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime

import yaml

from bot import channels
from bot.flows.spec import LANGUAGES, Audience, OpenDay, Translated
from bot.flows.yaml_reader import NodeReader

OPEN_DAY_TEXT_KEYS = (
    "open_day_invite", "open_day_seated", "open_day_waiting", "open_day_promoted", "open_day_declined",
    "open_day_later", "open_day_ask_again", "open_day_reminder_24h", "open_day_reminder_1h", "open_day_starting",
    "open_day_followup", "open_day_recording", "open_day_over", "open_day_full_anyway", "open_day_when",
    "open_day_online", "open_day_calendar_caption", "open_day_full", "open_day_full_recording", "open_day_full_next",
    "open_day_full_no_next", "open_day_missed",
    "label_od_yes", "label_od_no", "label_od_later", "label_od_cancel", "label_od_module",
)
PLACEHOLDERS = frozenset({"name", "business", "support_email", "title", "when", "where", "description", "rank",
                          "link", "module", "recording", "date", "time", "calendar", "next"})
EVENT_KEYS = ("id", "title", "start", "time_zone", "duration_minutes", "online", "address", "capacity", "audience",
              "description", "followup_module", "recording")
AUDIENCE_KEYS = ("channels", "languages", "business_types", "modules_done")
TITLE_MAX_CHARS = 80
DESCRIPTION_MAX_CHARS = 600
DURATION_MAX_MINUTES = 12 * 60
CAPACITY_MAX = 100_000


def read_events(reader: NodeReader, root: yaml.Node, module_ids: tuple[str, ...],
                business_ids: frozenset[str]) -> tuple[tuple[OpenDay, ...], dict[str, Translated]]:
    top = reader.mapping(root, where="events.yaml", required=("events", "texts"))
    if not top:
        return (), {}
    texts = reader.texts(top["texts"], required=OPEN_DAY_TEXT_KEYS, placeholders=PLACEHOLDERS) if "texts" in top else {}
    events: list[OpenDay] = []
    for node in (reader.sequence(top["events"], where="events") or []) if "events" in top else []:
        event = _event(reader, node, module_ids, business_ids)
        if event is None:
            continue
        if any(known.id == event.id for known in events):
            reader.problem(node, f"the event id '{event.id}' is used twice", "give each event its own id")
        else:
            events.append(event)
    return tuple(events), texts


def _event(reader: NodeReader, node: yaml.Node, module_ids: tuple[str, ...],
           business_ids: frozenset[str]) -> OpenDay | None:
    required = ("id", "title", "start", "time_zone", "duration_minutes", "capacity", "description")
    fields = reader.mapping(node, where="an event", required=required, optional=EVENT_KEYS)
    if not fields or not set(required) <= set(fields):
        return None
    before = len(reader.problems)
    event_id = reader.identifier(fields["id"], where="event id") or ""
    where = f"event '{event_id}'"
    title = reader.translated(fields["title"], where=f"{where} title", max_chars=TITLE_MAX_CHARS,
                              limit_reason="a title", placeholders=frozenset())
    description = reader.translated(fields["description"], where=f"{where} description",
                                    max_chars=DESCRIPTION_MAX_CHARS, limit_reason="a description",
                                    placeholders=frozenset())
    zone_name = reader.scalar(fields["time_zone"], where=f"{where} time_zone") or ""
    start_ms = _start(reader, fields["start"], fields["time_zone"], zone_name, where)
    duration = reader.integer(fields["duration_minutes"], where=f"{where} duration_minutes", minimum=1)
    if duration is not None and duration > DURATION_MAX_MINUTES:
        reader.problem(fields["duration_minutes"], f"{where} lasts {duration} minutes",
                       f"keep it within {DURATION_MAX_MINUTES} (one day's event)")
    capacity = reader.integer(fields["capacity"], where=f"{where} capacity", minimum=1)
    if capacity is not None and capacity > CAPACITY_MAX:
        reader.problem(fields["capacity"], f"{where} has {capacity} seats", f"keep it within {CAPACITY_MAX}")
    online = _url(reader, fields.get("online"), f"{where} online")
    recording = _url(reader, fields.get("recording"), f"{where} recording")
    address = (reader.scalar(fields["address"], where=f"{where} address") or "").strip() \
        if "address" in fields else ""
    if "online" not in fields and "address" not in fields:
        reader.problem(node, f"{where} has neither an online link nor an address",
                       "add online: \"https://...\" (the link to join) and/or address: \"...\"")
    module = ""
    if "followup_module" in fields:
        module = reader.identifier(fields["followup_module"], where=f"{where} followup_module") or ""
        if module and module not in module_ids:
            reader.problem(fields["followup_module"], f"{where}: the follow-up module '{module}' is not in the "
                           "course", f"use one of the modules listed in course.yaml: {', '.join(module_ids)}")
    audience = _audience(reader, fields.get("audience"), module_ids, business_ids, where)
    if len(reader.problems) > before or not title or not description or start_ms is None or duration is None \
            or capacity is None:
        return None
    return OpenDay(id=event_id, title=title, start_ms=start_ms, time_zone=zone_name, duration_minutes=duration,
                   capacity=capacity, description=description, online_url=online, address=address,
                   recording_url=recording, followup_module=module, audience=audience,
                   line=node.start_mark.line + 1)


def _start(reader: NodeReader, node: yaml.Node, zone_node: yaml.Node, zone_name: str, where: str) -> int | None:
    try:
        zone = zoneinfo.ZoneInfo(zone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        reader.problem(zone_node, f"{where}: '{zone_name}' is not a time zone",
                       "write an IANA name like Europe/Rome")
        return None
    text = reader.scalar(node, where=f"{where} start") if isinstance(node, yaml.ScalarNode) else None
    if text is None:
        reader.problem(node, f"{where} start is not a date and time", 'write it like "2026-12-10T18:30" (quoted)')
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        reader.problem(node, f"{where} start '{text}' is not a date and time",
                       'write it like "2026-12-10T18:30" (quoted), local time in time_zone')
        return None
    if moment.tzinfo is not None:
        reader.problem(node, f"{where} start '{text}' carries an offset",
                       "write the local time without an offset; time_zone says where it is")
        return None
    return int(moment.replace(tzinfo=zone).timestamp() * 1000)


def _url(reader: NodeReader, node: yaml.Node | None, where: str) -> str:
    if node is None:
        return ""
    value = (reader.scalar(node, where=where) or "").strip()
    if not value.startswith("https://") or " " in value:
        reader.problem(node, f"{where} '{value}' is not an https link", 'write the full link: "https://..."')
        return ""
    return value


def _names(reader: NodeReader, node: yaml.Node, where: str, allowed: tuple[str, ...] | frozenset[str],
           what: str) -> tuple[str, ...]:
    names: list[str] = []
    for item in reader.sequence(node, where=where) or []:
        value = reader.scalar(item, where=where) or ""
        if value not in allowed:
            reader.problem(item, f"{where}: '{value}' is not {what}", f"use one of: {', '.join(sorted(allowed))}")
        else:
            names.append(value)
    return tuple(names)


def _audience(reader: NodeReader, node: yaml.Node | None, module_ids: tuple[str, ...],
              business_ids: frozenset[str], where: str) -> Audience:
    if node is None:
        return Audience()
    fields = reader.mapping(node, where=f"{where} audience", optional=AUDIENCE_KEYS) or {}
    known_channels = tuple(parts.channel.name for parts in channels.every())
    return Audience(
        channels=_names(reader, fields["channels"], f"{where} audience channels", known_channels, "a channel")
        if "channels" in fields else (),
        languages=_names(reader, fields["languages"], f"{where} audience languages", LANGUAGES, "a language")
        if "languages" in fields else (),
        business_types=_names(reader, fields["business_types"], f"{where} audience business_types", business_ids,
                              "a business type of course.yaml") if "business_types" in fields else (),
        modules_done=_names(reader, fields["modules_done"], f"{where} audience modules_done", module_ids,
                            "a module of course.yaml") if "modules_done" in fields else ())
