"""``GET /v1/models``: the installed models and their LoRAs, as OpenAI lists models."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.context import ApiKey, Context
from api.errors import openai_error_responses
from chorus.models.catalog import CARD_FILE, find_model, list_models

router = APIRouter(prefix="/v1/models", tags=["models"])


class Adapter(BaseModel):
    name: str = Field(description="what a request names in lora.name")
    revision: str = Field(description="digest of the LoRA file")


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(description="Unix seconds: when the model's card was written")
    owned_by: str = "chorus"
    default: bool = Field(description="the model of requests that name none")
    adapters: list[Adapter]


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


@router.get("", response_model=ModelList, responses=openai_error_responses(401), summary="List models")
async def index(context: Context, key: ApiKey) -> ModelList:
    await context.as_tenant(key, _authorised)
    settings = context.settings

    def read() -> ModelList:
        cards = [
            card for model_id in list_models(settings.models_dir) if (card := find_model(model_id, settings.models_dir))
        ]
        return ModelList(
            data=[
                Model(
                    id=card.path.name,
                    created=int((card.path / CARD_FILE).stat().st_mtime),
                    default=card.path.name == settings.default_model,
                    adapters=[Adapter(name=name, revision=entry["revision"]) for name, entry in card.adapters.items()],
                )
                for card in cards
            ]
        )

    return await run_in_threadpool(read)


def _authorised(session: Session, tenant_id: uuid.UUID) -> None:
    """Models are the deployment's, not a tenant's: the key only has to be valid."""
