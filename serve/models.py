"""The API's response bodies: what the OpenAPI document describes and every response carries."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class RecommendedTrack(BaseModel):
    rank: int = Field(description="1 for the best recommendation, then 2, 3...")
    track_id: int
    track_name: str | None = Field(description="None if the track left the catalogue")
    artist_name: str | None
    score: float = Field(description="the model's score: higher is better, within one user")


class Recommendations(BaseModel):
    night: str = Field(description="the nightly run whose published file served this response")
    user_id: int
    model_version: int
    model_kind: str | None = Field(description="als, popularity, co_listen...")
    generated_at: datetime = Field(description="when that night's scoring computed them (UTC)")
    is_cold_start: bool = Field(description="the user had no listens: genre favourites instead")
    items: list[RecommendedTrack] = Field(description="in rank order")


class SimilarTrack(BaseModel):
    rank: int
    track_id: int
    track_name: str | None
    artist_name: str | None
    co_listeners: int = Field(description="current users who played both tracks")


class SimilarTracks(BaseModel):
    night: str
    track_id: int
    track_name: str | None
    artist_name: str | None
    items: list[SimilarTrack] = Field(description="most co-listened first")


class Health(BaseModel):
    status: str = Field(description="ok")
    night: str
    published_at: datetime = Field(description="when the nightly run published the file (UTC)")
    age_hours: float
    stale_after_hours: float
    model_version: int | None
    model_kind: str | None


class ErrorDetail(BaseModel):
    status: int
    code: str = Field(description="machine-readable: user_not_found, invalid_request, ...")
    message: str
    night: str | None = Field(default=None, description="the night that answered, if any")


class ErrorBody(BaseModel):
    """The one shape of every error response (4xx, 5xx)."""

    error: ErrorDetail
