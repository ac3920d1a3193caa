"""Where the portal's templates, static files and migrations are, and where its instance folder goes by default.

The one place that answers it. In a checkout of the repository (and in its editable install, `pip install -e .`)
they are the top-level folders templates/, static/ and migrations/. A wheel carries them inside the package,
beside this module: pyproject.toml maps the packages portal.web.templates, portal.web.static and
portal.web.migrations onto those folders when it builds one. A checkout never has them here, so their presence
tells the two apart.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent  # portal/web
_CHECKOUT = _HERE.parents[1]  # the repository, when this module is read from one

INSTALLED = (_HERE / "templates").is_dir()
BASE = _HERE if INSTALLED else _CHECKOUT

TEMPLATES = BASE / "templates"
STATIC = BASE / "static"
MIGRATIONS = BASE / "migrations"

# Secrets and the SQLite file, unless PORTAL_INSTANCE says otherwise (a deployment should). A checkout keeps its
# own instance/ (`make run`); an installed package must not write into site-packages, so it takes Flask's place
# for an installed application's instance folder: <environment prefix>/var/<name>-instance.
DEFAULT_INSTANCE = Path(sys.prefix) / "var" / "concern-portal-instance" if INSTALLED else _CHECKOUT / "instance"
