"""``POST /v1/feedback``: thumbs, ratings, choices among n answers, rankings, corrections and side-by-side
comparisons of logged requests.

Stored through the request log (the monitor store); ``tunesmith monitor export-data`` turns them into the
next round's preference, KTO, reward and SFT data. Feedback on a request the server never answered (or one
older than the log remembers and not in the store) is a 404, so nothing unlinkable is kept.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Request

from tunesmith.serve.context import Served, served
from tunesmith.serve.errors import ApiError, documented
from tunesmith.serve.protocol import FeedbackAccepted, FeedbackRequest, log_id

router = APIRouter()


def answers_of(ctx: Served, request_id: str) -> int | None:
    """How many answers the logged request had (None: unknown)."""
    recent = getattr(ctx.log, "answers", None)
    if recent is not None and (n := recent(request_id)) is not None:
        return int(n)
    store = getattr(ctx.log, "store", None)
    if store is not None:
        rows = store.request_choices([request_id])
        return rows.get(request_id)
    return None


def accept_feedback(body: FeedbackRequest, ctx: Served) -> FeedbackAccepted:
    if not hasattr(ctx.log, "record_feedback"):
        raise ApiError(503, "feedback needs a request log: start the server with --store", "server_error")
    request_id = log_id(body.request_id)
    answers = answers_of(ctx, request_id)
    if answers is None:
        raise ApiError(404, f"no logged request with id '{body.request_id}'", param="request_id", code="not_found")
    try:
        value = body.normalised()
    except ValueError as exc:
        raise ApiError(400, str(exc), param="value") from None
    if body.kind == "choice" and value >= answers:
        raise ApiError(400, f"choice {value}: the request had {answers} answers (0-{answers - 1})", param="value")
    if body.kind == "ranking" and sorted(value) != list(range(answers)):
        raise ApiError(
            400, f"ranking must list each of the request's {answers} answers once, best first", param="value"
        )
    if body.kind == "comparison" and answers_of(ctx, value) is None:
        raise ApiError(404, f"no logged request with id '{body.value}'", param="value", code="not_found")
    stored: Any = {"value": value, "scale": list(body.scale)} if body.kind == "rating" else value
    ctx.log.record_feedback(
        {
            "request_id": request_id,
            "time": time.time(),
            "kind": body.kind,
            "value": json.dumps(stored, ensure_ascii=False),
            "comment": body.comment,
        }
    )
    return FeedbackAccepted(request_id=request_id, kind=body.kind)


@router.post("/v1/feedback", response_model=FeedbackAccepted, responses=documented(404, 503))
async def feedback(body: FeedbackRequest, request: Request) -> Any:
    return accept_feedback(body, served(request))
