"""The WSGI entry point: `gunicorn wsgi:app` (see gunicorn.conf.py), and the app the `flask` command loads."""

import gc

gc.disable()  # no collections while the modules load: what they make lives as long as the process

from portal.web.app import create_app  # noqa: E402

app = create_app()
# Then all of it out of the cyclic garbage collector's sight, so that no collection walks it again, nor the one
# at exit (half a second of every `flask portal ...` command's time), and a worker's pages of it stay shared with
# its parent after a fork.
gc.freeze()
gc.enable()
