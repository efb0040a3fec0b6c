"""The WhatsApp Business Account's message templates over the Graph API: list them, create one.

``GET /{WABA_ID}/message_templates`` (following ``paging.next``) and ``POST`` to the same path, with the
system-user token (it needs ``whatsapp_business_management``). Errors are ``GraphError``s, sorted by Meta's
code like the sends' (``bot.delivery.graph``). What to make of the list is ``bot.proactive.templates``'.
"""

from __future__ import annotations

from typing import Any

import requests

from bot.delivery.graph import GraphApiError, GraphRequestError, GraphTransportError, LocalCode
from config.settings import Settings

FIELDS = "name,language,status,category"
PAGES_MAX = 50  # a WABA with more than 50 pages of templates is not ours: stop rather than loop


class TemplateAdmin:
    def __init__(self, settings: Settings, *, session: requests.Session | None = None) -> None:
        if not settings.whatsapp_business_account_id:
            raise GraphRequestError("WHATSAPP_BUSINESS_ACCOUNT_ID is not set: set it to the WhatsApp Business "
                                    "Account id (WhatsApp Manager > Account tools)", code=LocalCode.NOT_SENT,
                                    transient=False)
        self.url = f"{settings.graph_base()}/{settings.whatsapp_business_account_id}/message_templates"
        self.headers = {"Authorization": f"Bearer {settings.whatsapp_token}"}
        self.timeout = (settings.send_timeout_seconds, settings.send_timeout_seconds)
        self.session = session or requests.Session()

    def templates(self) -> list[dict[str, Any]]:
        """Every template of the account (Meta's objects), all pages."""
        found: list[dict[str, Any]] = []
        url: str | None = self.url
        params: dict[str, str] | None = {"fields": FIELDS, "limit": "100"}
        for _ in range(PAGES_MAX):
            if not url:
                break
            page = self._call("GET", url, params=params)
            data = page.get("data")
            found.extend(item for item in (data if isinstance(data, list) else []) if isinstance(item, dict))
            paging = page.get("paging")
            url = paging.get("next") if isinstance(paging, dict) and isinstance(paging.get("next"), str) else None
            params = None  # the next URL carries them
        return found

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """Submit one template (``bot.proactive.templates.submission``); Meta answers its id and status."""
        return self._call("POST", self.url, json=body)

    def _call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self.session.request(method, url, headers=self.headers, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise GraphTransportError(f"could not reach the Graph API for the message templates "
                                      f"({type(exc).__name__}): check GRAPH_API_URL and the network",
                                      code=LocalCode.NO_RESPONSE, transient=True) from None
        try:
            data = response.json()
        except ValueError:
            data = None
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict) and isinstance(error.get("code"), int):
            code = error["code"]
            hint = "see docs/platform.md §10 for the code"
            if code in (0, 190, 10):
                hint = "set WHATSAPP_TOKEN to a system-user token with whatsapp_business_management"
            raise GraphApiError(f"Meta refused the message templates call with error code {code} "
                                f"(HTTP {response.status_code}): {hint}", code=code, transient=False,
                                http_status=response.status_code, meta_message=str(error.get("message", "")))
        if response.status_code >= 300 or not isinstance(data, dict):
            raise GraphApiError(f"expected a JSON answer from the message templates call, got HTTP "
                                f"{response.status_code}", code=LocalCode.HTTP_STATUS_ONLY, transient=False,
                                http_status=response.status_code)
        return data
