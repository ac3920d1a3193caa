"""Web: the Flask application, its blueprints, security headers, errors and logs."""
