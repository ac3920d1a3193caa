"""A wheel that runs (issue 14): built from the checkout, installed into a fresh virtual environment, initialised
with `flask --app wsgi portal init` and served by gunicorn from a folder outside the repository, as the README's
deployment does. Before, the wheel carried no templates, static files or migrations and `portal init` failed."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.web import resources

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("/", "/report", "/status", "/login", "/static/portal.css", "/healthz")
# The checkout's folders that the wheel carries inside the package, and where (pyproject.toml's package-dir).
CARRIED = {"templates": "portal/web/templates", "static": "portal/web/static", "migrations": "portal/web/migrations"}
# What the wheel is built from: the checkout's files that pyproject.toml names, copied (never the instance folder
# or `make run`'s demo recovery key). Building in a copy keeps setuptools' build/ folder, whose stale files would
# go into the next wheel, out of the checkout.
SOURCE = ("pyproject.toml", "README.md", "config.py", "wsgi.py", "portal", *CARRIED)
# The settings that the server's environment gives the portal; the test's own (its database, say) must not leak in.
PORTAL_PREFIXES = ("PORTAL_", "FLASK_", "MAIL_", "RATELIMIT_")
PORTAL_NAMES = {"DATABASE_URL", "TEST_DATABASE_URL", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "WEB_CONCURRENCY"}


def _run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _files_under(folder: Path) -> set[str]:
    return {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def _build_wheel(tmp_path: Path) -> Path:
    source, dist = tmp_path / "source", tmp_path / "dist"
    source.mkdir()
    for name in SOURCE:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    # `pip install .` builds in an isolated environment with [build-system]'s setuptools, and so does this (the
    # project's virtual environment has no wheel-building setuptools of its own).
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(dist), str(source)])
    (wheel,) = dist.glob("concern_portal-*.whl")
    return wheel


def _fresh_environment(tmp_path: Path, wheel: Path) -> Path:
    """A new virtual environment holding the wheel; returns its python."""
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet", str(wheel)])
    # The dependencies: the project's own virtual environment, which `pip install -e .` filled from the same
    # pyproject.toml, is appended to the new one's path by a .pth file. Installing them from the index instead
    # took 31-50 s here (over 180 MB, with pypi.org asked first) against about 1 s, for a test that is about the
    # package's files, not its dependency list. Only the folder is added: the .pth files in it, among them the
    # editable install's finder that would map `portal` back to the checkout, are not run.
    site_packages = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    )
    project = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site_packages / "project_dependencies.pth").write_text("".join(f"{folder}\n" for folder in sorted(project)))
    return python


def _server_environment(instance: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in PORTAL_NAMES and not name.startswith(PORTAL_PREFIXES)
    }
    env.update(PORTAL_INSTANCE=str(instance), PORTAL_BIND="127.0.0.1:0", WEB_CONCURRENCY="1")
    return env


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """The portal built, installed, initialised and served from outside the repository: (port, wheel)."""
    wheel = _build_wheel(tmp_path)
    python = _fresh_environment(tmp_path, wheel)
    outside = tmp_path / "server"
    outside.mkdir()
    env = _server_environment(outside / "instance")

    probe = "import importlib.util as u; print(*(u.find_spec(m).origin for m in ('portal', 'config', 'wsgi')))"
    where = _run([str(python), "-c", probe], cwd=outside, env=env).stdout.split()
    assert all(Path(origin).is_relative_to(python.parents[1]) for origin in where), where

    flask = [str(python), "-m", "flask", "--app", "wsgi"]
    init = _run([*flask, "portal", "init", "--recovery-key-out", str(outside / "recovery.key")], cwd=outside, env=env)
    assert "Initialised" in init.stdout
    assert (outside / "recovery.key").exists() and (outside / "instance" / "secrets.json").exists()

    log = outside / "gunicorn.log"
    with log.open("w") as handle:
        server = subprocess.Popen(
            [str(python), "-m", "gunicorn", "-c", "python:portal.web.gunicorn_settings", "wsgi:app"],
            cwd=outside,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        yield _port_when_ready(server, log), wheel
    finally:
        server.terminate()
        server.wait(timeout=30)


def _port_when_ready(server: subprocess.Popen[bytes], log: Path) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, f"gunicorn stopped:\n{log.read_text()}"
        found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log.read_text())
        try:
            if found and _get(int(found.group(1)), "/healthz")[0] == 200:
                return int(found.group(1))
        except OSError:
            pass  # the worker is still starting
        time.sleep(0.2)
    raise AssertionError(f"gunicorn did not answer within 60 s:\n{log.read_text()}")


def _get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.slow
def test_the_wheel_installs_initialises_and_serves_outside_the_repository(served):
    port, wheel = served
    for path in PAGES:
        status, body = _get(port, path)
        assert status == 200, f"{path}: {status}\n{body[:500]!r}"
    assert _get(port, "/static/portal.css")[1] == (ROOT / "static" / "portal.css").read_bytes()

    # Every module of the package and every file of the carried folders is in the wheel: the package list in
    # pyproject.toml is written by hand, and a package left out of it would be missing only where it is imported.
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {f"portal/{name}" for name in _files_under(ROOT / "portal") if name.endswith(".py")}
    carried = {f"{CARRIED[folder]}/{name}" for folder in CARRIED for name in _files_under(ROOT / folder)}
    assert modules | carried <= names, sorted((modules | carried) - names)
    assert {"config.py", "wsgi.py"} <= names


def test_a_checkout_uses_the_top_level_folders_of_the_repository():
    """The suite runs from the checkout (an editable install): templates, static files and migrations are the
    repository's own, and the instance folder is the checkout's, not one inside the package."""
    assert not resources.INSTALLED
    assert resources.TEMPLATES == ROOT / "templates" and (resources.TEMPLATES / "base.html").is_file()
    assert resources.STATIC == ROOT / "static" and (resources.STATIC / "portal.css").is_file()
    assert resources.MIGRATIONS == ROOT / "migrations" and (resources.MIGRATIONS / "env.py").is_file()
    assert resources.DEFAULT_INSTANCE == ROOT / "instance"
