"""The WSGI entry point the Procfile names: ``gunicorn "webhooks:create_app()"``. The app lives in ``bot.web``."""

from bot.web.app import create_app

__all__ = ["create_app"]
