"""Storage: the schema (models), the server's own secrets, the chained audit log and bulk loading."""
