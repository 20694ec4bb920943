"""Config sections for explanations, narration and score logs.

Kept apart from ``vadmon.config.models`` so the event-explanation features read as one unit;
``MonitorConfig`` includes them as ``explain:`` and ``score_log:``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

DEFAULT_PHRASES = [
    "a person lying on the ground",
    "people fighting",
    "people running",
    "a crowd gathering",
    "smoke",
    "fire",
    "a car on fire",
    "a car crash",
    "a person holding a gun",
    "broken glass",
    "an empty street",
    "people walking calmly",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class NarrateConfig(_Section):
    """Optional narration by a vision-language model over a chat-completions endpoint."""

    url: str | None = Field(
        None,
        description="OpenAI-compatible base URL (Ollama, vLLM, llama.cpp server), e.g. "
        "http://127.0.0.1:11434/v1; null disables narration.",
    )
    model: str = Field("llava", min_length=1, max_length=200, description="Model name to ask.")
    api_key: SecretStr | None = Field(
        None, description="Bearer token; use ${ENV_VAR}, never a literal."
    )
    timeout_s: float = Field(30.0, gt=0, le=600, description="Whole-request limit.")
    concurrency: int = Field(1, ge=1, le=8, description="Requests in flight at once.")
    max_per_hour: int = Field(
        60, ge=0, le=10000, description="Narrations started per hour; the rest are skipped."
    )
    keyframes: int = Field(
        2, ge=0, le=8, description="Preview frames sent besides the peak snapshot."
    )
    max_tokens: int = Field(200, ge=16, le=4096, description="Reply length limit.")
    allow_private: bool = Field(
        True, description="A local model server is the usual case; false refuses private URLs."
    )

    @field_validator("url")
    @classmethod
    def _http(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("narrate.url must start with http:// or https://")
        return url.rstrip("/") if url else url


class ExplainConfig(_Section):
    """Built-in event explanations: class ranking, score curve and a CLIP phrase bank."""

    phrases: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PHRASES),
        max_length=256,
        description="Open-vocabulary phrases matched against every snippet's CLIP embedding; "
        "empty disables phrase evidence.",
    )
    top_k: int = Field(3, ge=1, le=16, description="Phrases reported per snippet and event.")
    narrate: NarrateConfig = Field(default_factory=NarrateConfig)

    @field_validator("phrases")
    @classmethod
    def _phrases(cls, phrases: list[str]) -> list[str]:
        for p in phrases:
            if not p.strip() or len(p) > 200:
                raise ValueError("phrases must be non-empty and at most 200 characters")
        return phrases


class ScoreLogConfig(_Section):
    """Every scored snippet, per camera, in hourly JSON-lines files for replay and calibration."""

    enabled: bool = Field(True, description="Write score logs under storage.dir/scores/.")
    keep_hours: float = Field(
        168.0, gt=0, le=24 * 366, description="Hourly files older than this are deleted."
    )
