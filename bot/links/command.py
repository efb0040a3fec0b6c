"""`bottega links TARGET [--campaign TAG] [--lang it|en] [--channel NAME] [--qr FOLDER]`.

Prints the start code and one link per channel; with ``--qr`` writes ``<target>-<campaign>-<channel>.svg``
and ``.png`` into FOLDER. TARGET: a module id (``m1_contatto``), ``checkup``, ``menu`` or ``event:ID``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bot import channels
from bot.flows.loader import load_course
from bot.links import qr
from bot.links.build import check_target, entry_links
from bot.model import start_codes
from bot.model.start_codes import StartCodeError
from config.settings import Settings


def run(settings: Settings, target: str, *, campaign: str = "", lang: str = "it", channel: str = "",
        qr_folder: str = "") -> int:
    try:
        start = start_codes.make(target, campaign)
        course = load_course(settings.flows_dir)
        check_target(start, course)
        accounts = {parts.channel.name: str(getattr(settings, parts.entry_link.account_setting))
                    for parts in channels.every() if parts.entry_link is not None}
        links, missing = entry_links(start, course, accounts, lang=lang, only=channel)
    except StartCodeError as error:
        print(f"bottega links: {error}", file=sys.stderr)
        return 2
    if channel and not links:
        print(f"bottega links: no {channel} link: set {missing[0].variable}" if missing else
              f"bottega links: {channel} has no entry links", file=sys.stderr)
        return 2
    print(f"start code  {start.code}   (target {start.target_name}, campaign {start.campaign or '-'})")
    for link in links:
        print(f"{link.channel:<11} {link.url}")
    for gap in missing:
        print(f"{gap.channel:<11} (no link: set {gap.variable})")
    if qr_folder:
        stem = "-".join(part for part in (start.target or start.kind, start.campaign) if part)
        for link in links:
            svg, png = qr.write(link.url, Path(qr_folder), f"{stem}-{link.channel}")
            print(f"QR          {svg}  {png}")
    return 0 if links else 2
