"""The FastAPI application: routes, caching by night (ETag), the token, one error shape."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from pydantic import BaseModel

from serve.auth import require_token
from serve.errors import ERROR_RESPONSES, NIGHT_HEADER, ApiError, install_error_handlers
from serve.models import Health, Recommendations, SimilarTracks
from serve.night import Night
from serve.nights import Nights
from serve.settings import ServeSettings

MAX_ID = 2**63 - 1  # ids are BIGINT in the marts
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=20, description="how many items, 1 to 20")]

router = APIRouter(dependencies=[Depends(require_token)], responses=ERROR_RESPONSES)


@router.get("/users/{user_id}/recommendations", response_model=Recommendations)
async def user_recommendations(request: Request, user_id: Id, limit: Limit = 10) -> Response:
    """The user's recommendations from the last published night, best first."""
    return _answer(
        request,
        f"users/{user_id}/recommendations?limit={limit}",
        lambda night: night.user_recommendations(user_id, limit),
        "user_not_found",
        lambda night: (
            f"no recommendations for user {user_id} in night {night.run_id}: "
            "an unknown or deleted user"
        ),
    )


@router.get("/tracks/{track_id}/similar", response_model=SimilarTracks)
async def similar_tracks(request: Request, track_id: Id, limit: Limit = 10) -> Response:
    """The tracks most often co-listened with this one ("more like this")."""
    return _answer(
        request,
        f"tracks/{track_id}/similar?limit={limit}",
        lambda night: night.similar_tracks(track_id, limit),
        "track_not_found",
        lambda night: f"track {track_id} is not in the catalogue of night {night.run_id}",
    )


def _answer(
    request: Request,
    resource: str,
    lookup: Callable[[Night], BaseModel | None],
    not_found: str,
    explain: Callable[[Night], str],
) -> Response:
    """One resource of the night being served: 304 on a matching ETag, 404 when the night has
    nothing for it, else its JSON with the night's ETag."""
    night = _night(request)
    etag = _etag(night, resource)
    if _matches(request, etag):
        return _not_modified(night, etag)
    body = lookup(night)
    if body is None:
        raise ApiError(404, not_found, explain(night), night.run_id)
    return _json(body, night, etag)


@router.get("/health", response_model=Health)
async def health(request: Request, response: Response) -> Health:
    """The published night served, its age and model; 503 when none or older than the window."""
    stale_after = request.app.state.settings.stale_after_hours
    night = _night(request)
    now = datetime.now(UTC).replace(tzinfo=None)  # the marts' timestamps are naive UTC
    age_hours = (now - night.published_at).total_seconds() / 3600
    if age_hours > stale_after:
        raise ApiError(
            503,
            "stale",
            f"night {night.run_id} was published {age_hours:.1f} h ago, more than the "
            f"{stale_after:g} h staleness window (nightly stale_after_hours)",
            night.run_id,
        )
    response.headers[NIGHT_HEADER] = night.run_id
    response.headers["Cache-Control"] = "no-store"
    return Health(
        status="ok",
        night=night.run_id,
        published_at=night.published_at,
        age_hours=round(age_hours, 3),
        stale_after_hours=stale_after,
        model_version=night.model_version,
        model_kind=night.model_kind,
    )


def create_app(settings: ServeSettings) -> FastAPI:
    nights = Nights(settings.analytics_path, settings.check_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nights.start()
        yield
        nights.stop()

    app = FastAPI(
        title="MooVitamix recommendations",
        version="1.0",
        description="Recommendations and similar tracks from the nightly published file. Every "
        "response names the night that served it (field `night`, header "
        f"`{NIGHT_HEADER}`) and carries an ETag valid until the next night.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.nights = nights
    install_error_handlers(app)
    app.include_router(router)
    return app


def _night(request: Request) -> Night:
    """The night this request answers from, all of it (taken once: never two nights)."""
    nights: Nights = request.app.state.nights
    night = nights.current
    if night is None:
        raise ApiError(503, "not_published", f"no published night to serve at {nights.path}")
    return night


def _etag(night: Night, resource: str) -> str:
    return f'"{night.run_id}/{resource}"'


def _matches(request: Request, etag: str) -> bool:
    sent = request.headers.get("if-none-match")
    return sent is not None and (
        sent.strip() == "*" or etag in (tag.strip().removeprefix("W/") for tag in sent.split(","))
    )


def _json(body: BaseModel, night: Night, etag: str) -> Response:
    """The body serialised once by its own model (the route's response_model documents it)."""
    response = Response(body.model_dump_json(), media_type="application/json")
    _tag(response, night, etag)
    return response


def _tag(response: Response, night: Night, etag: str) -> None:
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "no-cache"  # cache, but revalidate: free until next night
    response.headers[NIGHT_HEADER] = night.run_id


def _not_modified(night: Night, etag: str) -> Response:
    response = Response(status_code=304)
    _tag(response, night, etag)
    return response
