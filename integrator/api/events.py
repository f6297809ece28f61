"""The change feed: `GET /v1/events?after=CURSOR` pages account events in the order they were written, so a
portal can mirror accounts without reading tables. A cursor is an event's id (as text).

An event shows in the feed once it is `SETTLE_SECONDS` old: on PostgreSQL and MariaDB two transactions can
commit in the other order than they took their ids, and a reader that already moved past a later id would
never see the earlier one. The delay gives every transaction that wrote an event that long to commit.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from integrator.api.context import ApiContext, context_of
from integrator.api.models import UtcDatetime
from integrator.api.oauth import BEARER_RESPONSES, Caller, require
from integrator.clock import utcnow
from integrator.store.schema import account_events

__all__ = ["SETTLE_SECONDS", "router"]

SETTLE_SECONDS = 5
MAX_PAGE = 1000

router = APIRouter(prefix="/v1", tags=["feed"], responses=BEARER_RESPONSES)
FeedCaller = Annotated[Caller, require("portal", "staff")]
Context = Annotated[ApiContext, Depends(context_of)]


class Event(BaseModel):
    cursor: str = Field(description="pass as `after` to read on from here")
    account_id: str
    erp_id: str | None
    run_id: int | None = Field(description="the sync run that wrote it; null for a person's or the portal's")
    actor: str = Field(description="'sync', 'portal', 'self-service' or the person who acted")
    kind: str = Field(description="created | updated | removed | readded | restored | blocked | activated | ...")
    changes: Any = Field(description="what changed: {field: [old, new]} for updates; reasons; or null")
    at: UtcDatetime


class EventPage(BaseModel):
    events: list[Event]
    next_cursor: str | None = Field(description="the cursor to ask after next (the given one when nothing new)")


def _cursor(after: str | None) -> int:
    """The event id a cursor stands for (the query's pattern lets only 1 to 18 digits through)."""
    return int(after) if after else 0


@router.get("/events")
def list_events(
    who: FeedCaller,
    context: Context,
    after: Annotated[
        str | None, Query(pattern=r"^[0-9]{1,18}$", description="a cursor; omitted: from the start")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> EventPage:
    """Account events after the cursor, oldest first, at most `limit`."""
    del who
    start = _cursor(after)
    settled = utcnow() - timedelta(seconds=SETTLE_SECONDS)
    with context.engine.connect() as conn:
        rows = conn.execute(
            sa.select(account_events).where(account_events.c.id > start).order_by(account_events.c.id).limit(limit)
        ).all()
    for index, row in enumerate(rows):  # the page ends before the first event not yet settled
        if row.at > settled:
            rows = rows[:index]
            break
    events = [
        Event(
            cursor=str(row.id),
            account_id=row.account_id,
            erp_id=row.erp_id,
            run_id=row.run_id,
            actor=row.actor,
            kind=row.kind,
            changes=json.loads(row.changes) if row.changes else None,
            at=row.at,
        )
        for row in rows
    ]
    next_cursor = events[-1].cursor if events else (after or None)
    return EventPage(events=events, next_cursor=next_cursor)
