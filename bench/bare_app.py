"""The bare Flask app the portal is compared against, served by gunicorn with the portal's settings.

`gunicorn -c gunicorn.conf.py bench.bare_app:app` (bench/bench_intake.py starts it).

- GET /hello: the cheapest possible Flask response.
- POST /form: parses the same multipart form a report submission sends and answers a small page;
  what a framework costs for a form POST before any application work (validation, crypto, database).
"""

from __future__ import annotations

from flask import Flask, request

app = Flask(__name__)


@app.get("/hello")
def hello() -> str:
    return "hello"


@app.post("/form")
def form() -> str:
    fields = request.form
    return f"<p>{len(fields)} fields; summary of {len(fields.get('summary', ''))} characters</p>"


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
