"""``reminders.yaml`` -> the reminder choices and their texts. No I/O.

::

    reminders:
      slots:                           # what a learner can pick, in their local time (1 to 9)
        - {id: closing, time: "19:30", label: {it: "Dopo la chiusura", en: "After closing"}}
      weekdays: [{it: "Lunedì", en: "Monday"}, ...]   # seven, Monday first: "not on my closing day"
      later_choices: [later]           # a step's choice with this id ("Lo faccio dopo") schedules a follow-up
      task_marker: {it: "*Prova ora:*", en: "*Try it now:*"}   # the follow-up quotes the task from here
    texts:                             # what Bottega says about reminders (REMINDER_TEXT_KEYS)
      reminder_ask: {it: "...", en: "..."}

The engine (``bot.tutor.reminders``) offers the slots after the first module, from the menu and with the
word ``promemoria``/``reminders``; ``bot.proactive`` decides when and how each reminder goes.
"""

from __future__ import annotations

import re

import yaml

from bot.flows import channel_limits
from bot.flows.spec import Reminders, ReminderSlot, Translated
from bot.flows.yaml_reader import NodeReader

REMINDER_TEXT_KEYS = (
    "reminder_ask", "reminder_days_ask", "reminder_closed_day_ask", "reminder_set", "reminder_off",
    "reminder_message", "reminder_paused", "reminder_turned_off", "followup_ask", "followup_done",
    "followup_not_yet", "days_every", "days_weekdays", "days_except",
    "label_remind_never", "label_days_every", "label_days_weekdays", "label_days_except", "label_resume",
    "label_change_time", "label_reminders_off", "label_done", "label_not_yet", "label_reminders",
)
PLACEHOLDERS = frozenset({"name", "business", "support_email", "module", "time", "days", "day", "slots", "task"})
SLOTS_MAX = channel_limits.OPTIONS_MAX - 1  # the slots and "no, thanks" are offered as one set of options
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def read_reminders(reader: NodeReader, root: yaml.Node) -> tuple[Reminders | None, dict[str, Translated]]:
    top = reader.mapping(root, where="reminders.yaml", required=("reminders", "texts"))
    if not top:
        return None, {}
    texts = reader.texts(top["texts"], required=REMINDER_TEXT_KEYS, placeholders=PLACEHOLDERS) if "texts" in top else {}
    if "reminders" not in top:
        return None, texts
    fields = reader.mapping(top["reminders"], where="reminders", required=("slots", "weekdays"),
                            optional=("later_choices", "task_marker"))
    if not fields or not {"slots", "weekdays"} <= set(fields):
        return None, texts
    slots = _slots(reader, fields["slots"])
    weekdays = [reader.translated(node, where="a weekday", max_chars=channel_limits.LABEL.chars,
                                  limit_reason=channel_limits.LABEL.reason, placeholders=frozenset())
                for node in reader.sequence(fields["weekdays"], where="weekdays") or []]
    if len(weekdays) != 7:
        reader.problem(fields["weekdays"], f"weekdays lists {len(weekdays)} days", "list the seven, Monday first")
    later = tuple(reader.identifier(node, where="a later choice") or "" for node in
                  reader.sequence(fields["later_choices"], where="later_choices") or []) \
        if "later_choices" in fields else ("later",)
    marker = reader.translated(fields["task_marker"], where="task_marker", max_chars=40,
                               limit_reason="a marker", placeholders=frozenset()) if "task_marker" in fields else None
    if reader.problems or not slots or any(day is None for day in weekdays):
        return None, texts
    return Reminders(slots=slots, weekdays=tuple(day for day in weekdays if day), later_choices=later,
                     task_marker=marker), texts


def _slots(reader: NodeReader, node: yaml.Node) -> tuple[ReminderSlot, ...]:
    slots: list[ReminderSlot] = []
    items = reader.sequence(node, where="slots") or []
    if not 1 <= len(items) <= SLOTS_MAX:
        reader.problem(node, f"{len(items)} reminder slots", f"offer 1 to {SLOTS_MAX}")
    for item in items:
        fields = reader.mapping(item, where="a slot", required=("id", "time", "label"))
        if not fields or len(fields) < 3:
            continue
        slot_id = reader.identifier(fields["id"], where="slot id")
        time = reader.scalar(fields["time"], where="slot time") or ""
        match = _TIME.fullmatch(time)
        if not match:
            reader.problem(fields["time"], f"slot time '{time}' is not HH:MM", 'write it like "19:30" (quoted)')
        label = reader.translated(fields["label"], where=f"slot '{slot_id}' label",
                                  max_chars=channel_limits.LABEL.chars, limit_reason=channel_limits.LABEL.reason,
                                  placeholders=frozenset())
        if slot_id in {slot.id for slot in slots} or slot_id == "never":
            reader.problem(fields["id"], f"slot id '{slot_id}' is used twice or reserved", "rename it")
        elif slot_id and match and label:
            slots.append(ReminderSlot(id=slot_id, minute=int(match[1]) * 60 + int(match[2]), label=label))
    return tuple(slots)
