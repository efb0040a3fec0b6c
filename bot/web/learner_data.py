"""Public pages of issue 12: the privacy notice, a learner's data export, and the page behind a link code.

``GET /privacy`` -> ``PRIVACY_NOTICE_URL`` (302) or a short built-in notice (what is kept, for how long, the
chat words for the learner's rights). ``GET /data/<token>.json`` -> the export a learner asked for with
``i miei dati`` (``bot.privacy.chat``): 256-bit token, one hour, a JSON attachment, never indexed.
``GET /link/<code>`` -> buttons that open WhatsApp, Messenger or Instagram with the code already in the
message (``wa.me`` prefilled text, ``m.me`` ``ref``, ``ig.me``): whether the code is live is never shown here.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

import redis
from flask import Blueprint, Response, current_app, redirect
from werkzeug.wrappers import Response as WerkzeugResponse

from bot.privacy.chat import read_export
from bot.tutor import linking
from bot.web.certificates import PAGE_POLICY, PRIVATE_HEADERS, REDIS_DOWN

NOTICE = """<!doctype html><html lang="it"><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Bottega: privacy</title><body style="font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em">
<h1>Come Bottega usa i tuoi dati</h1>
<p>Bottega tiene: l'identificativo che la chat ci dà (numero WhatsApp o ID di Messenger/Instagram), il nome del
profilo, la lingua, il tipo di attività, le risposte e i punteggi del corso, i promemoria scelti, quando ci hai
scritto, il consenso (o il no) a ricevere messaggi, l'attestato se lo chiedi. Servono solo a farti seguire il corso.</p>
<p>Se non ci scrivi per {months} mesi, cancelliamo tutto (avvisandoti prima, quando la chat lo permette).</p>
<p>In chat scrivi <b>i miei dati</b> per ricevere tutto in un file, <b>cancella i miei dati</b> per cancellarlo,
<b>stop</b> per non ricevere più messaggi da noi. I messaggi passano da Meta (WhatsApp, Messenger, Instagram),
che li tratta secondo le sue regole.</p>
<h1 lang="en">How Bottega uses your data</h1>
<p lang="en">Bottega keeps the id the chat gives us (WhatsApp number or Messenger/Instagram id), your profile name,
language, kind of business, your course answers and scores, the reminders you chose, when you wrote, your consent
(or refusal) to messages from us, and your certificate if you ask for one - only to run the course for you. If
you don't write for {months} months, everything is erased (with a warning first where the chat allows it). In the
chat write <b>my data</b> to get all of it in a file, <b>delete my data</b> to erase it, <b>stop</b> to get no
more messages from us.</p></body></html>"""

LINK_PAGE = """<!doctype html><html lang="it"><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Bottega: collega</title><body style="font-family:sans-serif;max-width:30em;margin:2em auto;padding:0 1em">
<h1>Continua il corso da un'altra app</h1><p>Apri l'app e invia il messaggio già pronto
(codice <b>{code}</b>, vale 10 minuti). / Open the app and send the ready message (code <b>{code}</b>).</p>
{buttons}</body></html>"""


def blueprint(client: redis.Redis) -> Blueprint:
    routes = Blueprint("learner_data", __name__)

    @routes.get("/privacy")
    def notice() -> Response | WerkzeugResponse:
        settings = current_app.extensions["bottega"]["settings"]
        if settings.privacy_notice_url:
            return redirect(settings.privacy_notice_url, 302)
        headers = {"Content-Security-Policy": PAGE_POLICY}
        return Response(NOTICE.replace("{months}", str(settings.retention_months)), 200, mimetype="text/html",
                        headers=headers)

    @routes.get("/data/<token>.json")
    def data(token: str) -> Response:
        try:
            document = read_export(client, token)
        except REDIS_DOWN:
            return Response("unavailable", 503, mimetype="text/plain", headers=PRIVATE_HEADERS)
        if document is None:
            return Response("not found", 404, mimetype="text/plain", headers=PRIVATE_HEADERS)
        headers = {**PRIVATE_HEADERS, "Content-Disposition": 'attachment; filename="bottega-i-miei-dati.json"'}
        return Response(document, 200, mimetype="application/json", headers=headers)

    @routes.get("/link/<code>")
    def link(code: str) -> Response:
        found = linking.code_in("", linking.REF_PREFIX + code)
        if not found:
            return Response("not found", 404, mimetype="text/plain", headers=PRIVATE_HEADERS)
        settings = current_app.extensions["bottega"]["settings"]
        text = quote(f"collega {linking.shown(found)}")
        number = "".join(ch for ch in settings.whatsapp_display_number if ch.isdigit())
        targets = [("WhatsApp", f"https://wa.me/{number}?text={text}", number),
                   ("Messenger", f"https://m.me/{settings.messenger_page_username}?ref=link.{found}",
                    settings.messenger_page_username),
                   ("Instagram", f"https://ig.me/m/{settings.instagram_username}", settings.instagram_username)]
        buttons = "".join(f'<p><a href="{escape(url)}" style="font-size:1.3em">{name}</a></p>'
                          for name, url, configured in targets if configured)
        page = LINK_PAGE.replace("{code}", escape(linking.shown(found))).replace("{buttons}", buttons)
        return Response(page, 200, mimetype="text/html", headers={**PRIVATE_HEADERS,
                                                                   "Content-Security-Policy": PAGE_POLICY})

    return routes
