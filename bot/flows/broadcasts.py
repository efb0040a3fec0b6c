"""``broadcasts.yaml`` -> the messages an admin may broadcast (``bottega broadcast``). No I/O.
::

    broadcasts:
      - id: news                      # what `bottega broadcast --message news` sends
        text: {it: "...", en: "..."}  # a normal message, inside the learner's 24-hour window
        buttons:                      # optional quick replies (payloads that resolve, as a template's)
          - {label: {it: "Apri il menu", en: "Open the menu"}, payload: "sys:menu"}
        template: news                # optional: the templates.yaml template (by use) sent outside the window

Checks: ids, both languages, the message length every channel shows, buttons, and that ``template``
names a template declared in templates.yaml. ``bot.tutor.broadcast`` sends one as a learner's turn.
"""

from __future__ import annotations

import yaml

from bot.flows import channel_limits
from bot.flows.spec import BroadcastMessage, TemplateSpec
from bot.flows.templates import read_buttons
from bot.flows.yaml_reader import NodeReader

PLACEHOLDERS = frozenset({"name", "business", "support_email"})


def read_broadcasts(reader: NodeReader, root: yaml.Node, module_ids: tuple[str, ...],
                    templates: tuple[TemplateSpec, ...]) -> tuple[BroadcastMessage, ...]:
    top = reader.mapping(root, where="broadcasts.yaml", required=("broadcasts",))
    if not top or "broadcasts" not in top:
        return ()
    messages: list[BroadcastMessage] = []
    for node in reader.sequence(top["broadcasts"], where="broadcasts") or []:
        fields = reader.mapping(node, where="a broadcast message", required=("id", "text"),
                                optional=("buttons", "template"))
        if not fields or not {"id", "text"} <= set(fields):
            continue
        message_id = reader.identifier(fields["id"], where="broadcast id") or ""
        text = reader.translated(fields["text"], where=f"broadcast '{message_id}' text",
                                 max_chars=channel_limits.MESSAGE.chars, limit_reason=channel_limits.MESSAGE.reason,
                                 placeholders=PLACEHOLDERS)
        buttons = read_buttons(reader, fields.get("buttons"), module_ids, f"broadcast '{message_id}'")
        use = reader.scalar(fields["template"], where=f"broadcast '{message_id}' template") or "" \
            if "template" in fields else ""
        if use and not any(template.use == use for template in templates):
            reader.problem(fields["template"], f"broadcast '{message_id}': no template in templates.yaml has "
                           f"use '{use}'", "declare one with that use, or leave template: out")
        if any(message.id == message_id for message in messages):
            reader.problem(fields["id"], f"broadcast message '{message_id}' is declared twice", "rename one")
        elif message_id and text:
            messages.append(BroadcastMessage(id=message_id, text=text, buttons=buttons, template_use=use))
    return tuple(messages)
