"""The dry run: who a broadcast would reach now, how, and what it would cost. Sends nothing.

Each matching learner is asked the same question the send will ask (``bot.tutor.broadcast.decide``:
consent, quiet hours, the daily cap, the 24-hour window, the template for outside it), so the plan's
"free-form" are the learners whose window is open, "template" those a template reaches outside it (or
a Messenger marketing-messages token), and "unreachable" the rest — with the reason for each. The cost
is the price table's (``WHATSAPP_PRICES``/``PRICE_CURRENCY``, ``bot.proactive.policy.Prices``) for each
placement's category; channels Meta does not bill per message cost 0. It is an estimate: Meta bills
delivered messages only, and a learner who writes before their turn comes is sent free-form.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bot.broadcasts.audience import Query
from bot.proactive.placement import How, Placement

WINDOW_STATES = ("free_form", "template", "unreachable")


def window_state(decided: Placement) -> str:
    if decided.how in (How.FREE_FORM, How.MOVED):
        return "free_form"
    if decided.how in (How.TEMPLATE, How.OPT_IN_TOKEN):
        return "template"
    return "unreachable"


@dataclass(kw_only=True)
class Plan:
    message: str
    query: Query
    at_ms: int
    currency: str = ""
    matched: int = 0
    recipients: list[str] = field(default_factory=list)  # learner ids that would be sent it, in sending order
    by_channel: dict[str, Counter[str]] = field(default_factory=dict)  # channel -> window state -> learners
    unreachable: Counter[str] = field(default_factory=Counter)  # reason -> learners
    cost_by_category: dict[str, float] = field(default_factory=dict)  # category -> estimated cost
    by_category: Counter[str] = field(default_factory=Counter)  # category -> learners

    def add(self, learner_id: str, channel: str, decided: Placement) -> None:
        self.matched += 1
        state = window_state(decided)
        self.by_channel.setdefault(channel, Counter())[state] += 1
        if state == "unreachable":
            self.unreachable[decided.reason or decided.how.value] += 1
            return
        self.recipients.append(learner_id)
        self.by_category[decided.category] += 1
        self.cost_by_category[decided.category] = self.cost_by_category.get(decided.category, 0.0) + decided.cost
        self.currency = self.currency or decided.currency

    @property
    def cost(self) -> float:
        return round(sum(self.cost_by_category.values()), 4)

    def summary(self) -> dict[str, object]:
        """The plan as JSON-ready data (stored on the broadcast; the console shows it)."""
        return {"message": self.message, "query": self.query.to_json(), "at_ms": self.at_ms, "matched": self.matched,
                "recipients": len(self.recipients),
                "by_channel": {channel: dict(states) for channel, states in sorted(self.by_channel.items())},
                "unreachable": dict(self.unreachable), "by_category": dict(self.by_category),
                "cost_by_category": dict(self.cost_by_category), "cost": self.cost,
                "currency": self.currency or "USD"}

    @classmethod
    def from_summary(cls, data: dict[str, Any]) -> Plan:
        """The plan ``summary`` describes, for showing it (a console job's result): its counts and costs, but no
        recipients — their ids stay in the learners' records; ``data["recipients"]`` counts them."""
        return cls(message=str(data["message"]), query=Query.from_json(str(data["query"])), at_ms=int(data["at_ms"]),
                   currency=str(data["currency"]), matched=int(data["matched"]),
                   by_channel={channel: Counter(states) for channel, states in data["by_channel"].items()},
                   unreachable=Counter(data["unreachable"]), by_category=Counter(data["by_category"]),
                   cost_by_category={k: float(v) for k, v in data.get("cost_by_category", {}).items()})

    def lines(self) -> list[str]:
        """What ``bottega broadcast plan`` prints."""
        out = [f"message {self.message!r} to {self.query.describe()}: {self.matched} learners match, "
               f"{len(self.recipients)} would be sent it now"]
        out.append(f"  {'channel':<11}" + "".join(f"{state:>13}" for state in WINDOW_STATES))
        for channel, states in sorted(self.by_channel.items()):
            out.append(f"  {channel:<11}" + "".join(f"{states.get(state, 0):>13}" for state in WINDOW_STATES))
        for reason, count in self.unreachable.most_common():
            out.append(f"  unreachable: {count} — {reason}")
        for category, count in sorted(self.by_category.items()):
            out.append(f"  {category}: {count} messages, {self.cost_by_category[category]:.2f} "
                       f"{self.currency or 'USD'}")
        out.append(f"  estimated cost: {self.cost:.2f} {self.currency or 'USD'} (Meta bills delivered templates only)")
        return out
