"""Shared fixtures: real PostgreSQL (one schema per test, dropped after), one Prefect test server
per session, `harness serve` per module, Prometheus's binaries, and the offline model environment."""

from __future__ import annotations

import os
import shutil
import uuid
from typing import NoReturn

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _postgres_url() -> str:
    return os.environ.get("AMAIMA_TEST_POSTGRES_URL", DEFAULT_PG_URL)


def unavailable(message: str, require_env: str) -> NoReturn:
    """Skip a test whose server or tool is missing; fail it when ``$require_env`` is 1 (CI)."""
    if os.environ.get(require_env, "") == "1":
        pytest.fail(f"{message} ({require_env}=1, so this is an error, not a skip)")
    pytest.skip(message)


def _prometheus_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        unavailable(
            f"{name} not on PATH (Debian: apt-get install prometheus)", "HARNESS_REQUIRE_PROMETHEUS"
        )
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return _prometheus_tool("promtool")


@pytest.fixture(scope="session")
def prometheus() -> str:
    return _prometheus_tool("prometheus")


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The server URL, after proving it answers. Skips (or fails under HARNESS_REQUIRE_POSTGRES=1)."""
    import sqlalchemy as sa

    url = _postgres_url()
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
        unavailable(
            f"PostgreSQL not reachable at {url}: {type(exc).__name__}: {exc}",
            "HARNESS_REQUIRE_POSTGRES",
        )
    return url


@pytest.fixture
def postgres_url(postgres_server_url: str):
    """A URL whose search_path is a fresh schema, so runs never collide; dropped afterwards."""
    import sqlalchemy as sa

    schema = f"harness_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'create schema "{schema}"'))
    sep = "&" if "?" in postgres_server_url else "?"
    yield f"{postgres_server_url}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'drop schema if exists "{schema}" cascade'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'telemetry.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path) -> str:
    """Runs a test once on a SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'telemetry.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """One temporary Prefect API server for the whole session, with PREFECT_HOME isolated."""
    home = tmp_path_factory.mktemp("prefect_home")
    os.environ["PREFECT_HOME"] = str(home)
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(scope="module")
def served_router(tmp_path_factory):
    """`harness serve` as a real process (decision-only, its own SQLite store), one per module."""
    from live import procs

    tmp = tmp_path_factory.mktemp("serve")
    child = procs.start_service(tmp, f"sqlite:///{tmp / 'served.db'}")
    try:
        yield child
    finally:
        procs.stop(child)
