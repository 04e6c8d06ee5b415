"""``GET /v1/models`` and the adapter admin endpoints (vLLM's ``/v1/load_lora_adapter`` and unload shapes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from tunesmith.errors import ServeError
from tunesmith.serve.context import Served, served
from tunesmith.serve.errors import ApiError, documented
from tunesmith.serve.protocol import LoadAdapter, ModelCard, ModelList, UnloadAdapter

router = APIRouter()


def list_models(ctx: Served) -> ModelList:
    names = ctx.engine.model_names()
    base = names[0] if names else None
    return ModelList(data=[ModelCard(id=n, created=ctx.started, parent=None if n == base else base) for n in names])


def allowed_path(ctx: Served, raw: str) -> Path:
    """``raw`` resolved, and inside one of the configured adapter roots (no loading arbitrary server paths)."""
    roots = ctx.settings.adapter_roots
    if not roots:
        raise ApiError(
            403, "adapter loading is off; start the server with --adapter-root DIR to allow it", "permission_error"
        )
    try:
        path = Path(raw).expanduser().resolve()
    except (ValueError, OSError, RuntimeError) as exc:  # a NUL byte, a loop of links, an unknown ~user
        raise ApiError(400, f"lora_path is not a usable path ({exc})", param="lora_path") from None
    if not any(path.is_relative_to(root.resolve()) for root in roots):
        raise ApiError(
            403, f"lora_path must be inside {', '.join(map(str, roots))}", "permission_error", param="lora_path"
        )
    return path


async def load_adapter(body: LoadAdapter, ctx: Served) -> dict[str, Any]:
    path = allowed_path(ctx, body.lora_path)
    if body.lora_name in ctx.engine.model_names():
        raise ApiError(400, f"a model named '{body.lora_name}' is already loaded", param="lora_name")
    try:
        loaded = await run_in_threadpool(ctx.engine.load_adapter, body.lora_name, str(path))
    except ServeError as exc:
        raise ApiError(400, str(exc), param="lora_path") from None
    return {"status": "loaded", **loaded}


async def unload_adapter(body: UnloadAdapter, ctx: Served) -> dict[str, Any]:
    names = ctx.engine.model_names()
    if body.lora_name not in names[1:]:
        raise ApiError(
            404, f"no adapter named '{body.lora_name}' is loaded", param="lora_name", code="model_not_found"
        )
    try:
        await run_in_threadpool(ctx.engine.unload_adapter, body.lora_name)
    except ServeError as exc:
        raise ApiError(409, str(exc), param="lora_name") from None
    return {"status": "unloaded", "name": body.lora_name}


@router.get("/v1/models", response_model=ModelList, responses=documented())
async def models(request: Request) -> ModelList:
    return list_models(served(request))


@router.post("/v1/load_lora_adapter", responses=documented(403))
async def load(body: LoadAdapter, request: Request) -> dict[str, Any]:
    return await load_adapter(body, served(request))


@router.post("/v1/unload_lora_adapter", responses=documented(404, 409))
async def unload(body: UnloadAdapter, request: Request) -> dict[str, Any]:
    return await unload_adapter(body, served(request))
