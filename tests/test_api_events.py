"""The change feed `GET /v1/events?after=CURSOR`: pages in order, a cursor that resumes, events held back until
settled; real uvicorn on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
from support.api_server import RunningApi

from integrator.api.events import SETTLE_SECONDS
from integrator.clock import utcnow
from integrator.store.schema import account_events

pytest_plugins = ["api_fixtures"]


def _event(api: RunningApi, kind: str, *, age: float = 60, **changes: object) -> None:
    with api.engine.begin() as conn:
        conn.execute(
            account_events.insert().values(
                account_id="a-1",
                erp_id="1001",
                run_id=7 if kind == "created" else None,
                actor="sync" if kind == "created" else "Ewa (api:crm)",
                kind=kind,
                changes=json.dumps(changes) if changes else None,
                at=utcnow() - timedelta(seconds=age),
            )
        )


def _page(api: RunningApi, token: str, **params: object) -> httpx.Response:
    with api.client() as http:
        return http.get("/v1/events", params=params, headers={"Authorization": f"Bearer {token}"})


def test_the_feed_pages_events_in_order_and_resumes_at_the_cursor(api: RunningApi) -> None:
    """Three events in pages of two: the cursor of the last one read gives the rest, then nothing new."""
    _event(api, "created")
    _event(api, "updated", name=["Stara", "Nowa"])
    _event(api, "blocked", reason="Zaległe płatności")
    token = api.token("portal")
    first = _page(api, token, limit=2).json()
    assert [e["kind"] for e in first["events"]] == ["created", "updated"]
    assert first["events"][0]["run_id"] == 7 and first["events"][1]["changes"] == {"name": ["Stara", "Nowa"]}
    assert first["next_cursor"] == first["events"][1]["cursor"]
    rest = _page(api, token, after=first["next_cursor"], limit=2).json()
    assert [(e["kind"], e["actor"]) for e in rest["events"]] == [("blocked", "Ewa (api:crm)")]
    empty = _page(api, token, after=rest["next_cursor"]).json()
    assert empty == {"events": [], "next_cursor": rest["next_cursor"]}


def test_an_event_shows_once_settled_and_nothing_after_it_jumps_ahead(api: RunningApi) -> None:
    """A fresh event (younger than the settle time) is held back, and so is every later one, even if settled."""
    _event(api, "created")
    _event(api, "updated", age=0)
    _event(api, "blocked", age=SETTLE_SECONDS * 10)  # a later id with an older time: must wait its turn
    page = _page(api, api.token("staff")).json()
    assert [e["kind"] for e in page["events"]] == ["created"]


def test_bad_cursors_and_scopes_are_refused(api: RunningApi) -> None:
    """A cursor that is not one of the feed's is 422 invalid_request naming `after`; a sales_rep token is 403."""
    token = api.token("portal")
    bad = _page(api, token, after="abc")
    assert (bad.status_code, bad.json()["error"], bad.json()["detail"][0]["loc"]) == (
        422,
        "invalid_request",
        ["query", "after"],
    )
    assert _page(api, token, limit=0).status_code == 422
    assert _page(api, api.token("sales_rep")).status_code == 403
