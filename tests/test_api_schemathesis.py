"""Property-based testing of the portal API from its own OpenAPI document: schemathesis runs every check (status
codes and bodies as documented, schema-valid data accepted, malformed data refused, authentication not ignored)
against a real uvicorn, with a bearer token for the calls and HTTP Basic for the token endpoint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.api_server import api_config, running_api
from support.mailstore import seed_account

from integrator.api.clients import add_client
from integrator.mail.secrets import hash_password
from integrator.store.db import open_store

pytest_plugins = ["api_fixtures", "support.mail_fixtures"]

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))

# Calls whose schema-valid input can still be refused on its merits: a link token or ticket that is not one of
# ours (400 invalid_token / invalid_ticket), a new password that is the login (400 weak_password), a blank reason.
REFUSABLE = "|".join(
    ["activate", "password-reset/confirm", "impersonation/redeem", "password", "accounts/[^/]+/(block|impersonate)"]
)
CONFIG = """
[auth.openapi.HTTPBearer]
bearer = "{bearer}"

[auth.openapi.clientBasic]
username = "{client_id}"
password = "{client_secret}"

[parameters]
"path.account_id" = "{account_id}"

[[operations]]
include-path-regex = "^/v1/({refusable})$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]
"""


def test_schemathesis_finds_nothing_against_the_openapi_document(
    tmp_path: Path, sqlite_url: str, fast_argon2: None
) -> None:
    """`schemathesis run --checks all` over /openapi.json passes: every operation, every phase."""
    config = api_config(tmp_path, sqlite_url)
    engine = open_store(sqlite_url)
    account_id = seed_account(engine, "jan@example.pl", status="active", password_hash=hash_password("Hasło-12345"))
    with running_api(config, engine) as api:
        basic = add_client(engine, "schemathesis-basic", ["portal"])
        settings = tmp_path / "schemathesis.toml"
        settings.write_text(
            CONFIG.format(
                bearer=api.token("portal", "staff", name="schemathesis"),
                client_id=basic.client_id,
                client_secret=basic.client_secret,
                account_id=account_id,
                refusable=REFUSABLE,
            ),
            encoding="utf-8",
        )
        done = subprocess.run(
            [SCHEMATHESIS, "--config-file", str(settings), "--no-color", "run", f"{api.url}/openapi.json",
             "--checks", "all", "--max-examples", "5", "--generation-deterministic", "--request-timeout", "30"],
            capture_output=True, text=True, timeout=540, check=False, cwd=tmp_path,  # its .schemathesis/ cache there
        )  # fmt: skip
    summary = done.stdout[done.stdout.rfind("SUMMARY") :]
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "Selected: 17/17" in summary and " passed" in summary and "failure" not in summary
