"""gunicorn settings for a checkout: `gunicorn -c gunicorn.conf.py wsgi:app`.

They live in the package, portal/web/gunicorn_settings.py, so that an installed wheel has them too
(`gunicorn -c python:portal.web.gunicorn_settings wsgi:app`): this file only reads them from there.
"""

from portal.web.gunicorn_settings import *  # noqa: F403
