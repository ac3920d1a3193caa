"""Extensions created once at module level and bound to the app in create_app()."""

from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

from .security import rate_limit_key

migrate = Migrate()
csrf = CSRFProtect()
limiter = Limiter(key_func=rate_limit_key, default_limits=[], headers_enabled=False)
