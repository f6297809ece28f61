"""`/healthz` (the process answers) and `/readyz` (and can reach its store), for a load balancer or systemd."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Depends

from integrator.api.context import ApiContext, context_of
from integrator.api.errors import ApiError
from integrator.logs import get_logger

__all__ = ["router"]

log = get_logger("api")
router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The server is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "store_unreachable"}})
def readyz(context: ApiContext = Depends(context_of)) -> dict[str, str]:  # noqa: B008
    """The server is up and its store answers a query."""
    try:
        with context.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        log.warning("api_store_unreachable", error=type(exc).__name__)
        raise ApiError(503, "store_unreachable") from None
    return {"status": "ready"}
