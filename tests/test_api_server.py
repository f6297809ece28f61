"""`integrator serve`: the token endpoint (OAuth2 client credentials), health and readiness, `[api] listen`,
on a real uvicorn over SQLite and PostgreSQL stores."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from support.api_server import RunningApi, api_config, running_api
from support.smtp import free_port

from integrator.api.clients import add_client, token_hash
from integrator.errors import ConfigError
from integrator.store.schema import api_tokens

pytest_plugins = ["api_fixtures"]

INTEGRATOR = str(Path(sys.executable).with_name("integrator"))


def _token(api: RunningApi, client_id: str, secret: str, **form: str) -> httpx.Response:
    with api.client() as http:
        return http.post("/oauth/token", data={"grant_type": "client_credentials", **form}, auth=(client_id, secret))


def test_client_credentials_give_a_short_lived_bearer_token_with_the_clients_scopes(api: RunningApi) -> None:
    """HTTP Basic id and secret -> a bearer token with every scope of the client; only its hash is stored."""
    made = add_client(api.engine, "sklep", ["portal", "staff"])
    answer = _token(api, made.client_id, made.client_secret)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"].lower() == "bearer" and body["expires_in"] == 900
    assert set(body["scope"].split()) == {"portal", "staff"}
    assert answer.headers["cache-control"] == "no-store"
    with api.engine.connect() as conn:
        stored = conn.execute(api_tokens.select()).mappings().one()
    assert stored["token_hash"] == token_hash(body["access_token"]) and body["access_token"] not in str(dict(stored))
    narrower = _token(api, made.client_id, made.client_secret, scope="portal")
    assert narrower.json()["scope"] == "portal"


def test_token_refusals_follow_rfc_6749(api: RunningApi) -> None:
    """A wrong secret and an unknown client are 401 invalid_client alike; a scope the client lacks is
    invalid_scope; another grant type is unsupported_grant_type; no credentials at all is invalid_client."""
    made = add_client(api.engine, "sklep", ["portal"])
    wrong = _token(api, made.client_id, made.client_secret + "x")
    unknown = _token(api, "cl_nobody", made.client_secret)
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    assert (unknown.status_code, unknown.json()) == (wrong.status_code, wrong.json())
    scope = _token(api, made.client_id, made.client_secret, scope="staff")
    assert (scope.status_code, scope.json()["error"]) == (400, "invalid_scope")
    grant = _token(api, made.client_id, made.client_secret, grant_type="password")
    assert (grant.status_code, grant.json()["error"]) == (400, "unsupported_grant_type")
    with api.client() as http:
        bare = http.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert (bare.status_code, bare.json()["error"]) == (401, "invalid_client")
    with api.engine.connect() as conn:
        assert conn.execute(api_tokens.select()).first() is None


def test_health_and_readiness(api: RunningApi, tmp_path: Path) -> None:
    """/healthz answers while the process runs; /readyz only while the store answers (503 otherwise)."""
    with api.client() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/readyz").json() == {"status": "ready"}
    unreachable = api_config(tmp_path, "sqlite:///unused.db")
    broken = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    with running_api(unreachable, broken) as down, down.client() as http:
        assert http.get("/healthz").status_code == 200
        ready = http.get("/readyz")
        assert (ready.status_code, ready.json()) == (503, {"error": "store_unreachable"})


def test_unknown_path_and_method_answer_json_errors(api: RunningApi) -> None:
    """Even a path that does not exist gets the JSON error shape."""
    with api.client() as http:
        missing = http.get("/nothing-here")
        method = http.get("/oauth/token")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    assert (method.status_code, method.json()["error"]) == (405, "method_not_allowed")


def test_api_listen_is_validated(tmp_path: Path) -> None:
    """[api] listen must be host:port; the error names the key."""
    assert api_config(tmp_path, "sqlite:///s.db", listen="[::1]:9000").api.host == "::1"
    with pytest.raises(ConfigError) as error:
        api_config(tmp_path, "sqlite:///s.db", listen="localhost")
    assert "[api.listen] 'localhost' is not host:port" in str(error.value.errors)


def test_integrator_serve_listens_where_api_listen_says_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The installed command serves on [api] listen, logs requests without the secret or token, and a SIGTERM
    ends it with exit 0."""
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        '[source]\nkind = "csv"\npath = "erp.csv"\n[store]\nurl = "sqlite:///store.db"\n'
        f'[logging]\nformat = "json"\n[api]\nlisten = "127.0.0.1:{port}"\n',
        encoding="utf-8",
    )
    made = json.loads(
        subprocess.run(
            [INTEGRATOR, "api-client", "add", "sklep", "--scope", "portal", "--json", "--config", str(config)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    process = subprocess.Popen(
        [INTEGRATOR, "serve", "--config", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.1)
        assert ready.json() == {"status": "ready"}
        answer = httpx.post(
            f"http://127.0.0.1:{port}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(made["client_id"], made["client_secret"]),
        )
        assert answer.status_code == 200
        token = answer.json()["access_token"]
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert '"api_request"' in err and "/oauth/token" in err
    assert made["client_secret"] not in out + err and token not in out + err


def test_help_does_not_import_fastapi() -> None:
    """Every command but serve starts without the web stack."""
    code = "import sys, integrator.cli.app; print('fastapi' in sys.modules, 'uvicorn' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert done.stdout.split() == ["False", "False"]
