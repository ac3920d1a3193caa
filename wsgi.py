"""The WSGI entry point: `gunicorn wsgi:app` (see gunicorn.conf.py)."""

from portal import create_app

app = create_app()
