"""What every config section shares: unknown keys are errors, defaults are validated too."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Seconds = Annotated[float, Field(gt=0, le=86400)]


class StrictModel(BaseModel):
    """A config section: a typo is an error with its YAML line, never silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=False)
