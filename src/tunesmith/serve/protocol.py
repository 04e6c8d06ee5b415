"""The OpenAI-compatible request and response shapes (the subset we serve), as pydantic models.

Unknown request fields are ignored, as OpenAI's own server and vLLM do, so clients that send newer
options keep working; options that would change the answer and that we cannot honour (tools, logprobs,
echo) are refused with a 400 that names them rather than silently dropped.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_STOPS = 4
MAX_CHOICES = 8


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=256)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    n: int = Field(default=1, ge=1, le=MAX_CHOICES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=-(2**63), lt=2**64)  # what a 64-bit generator takes
    user: str | None = Field(default=None, max_length=256)
    logprobs: bool | int | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > MAX_STOPS:
            raise ValueError(f"at most {MAX_STOPS} stop sequences")
        return value

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class StreamOptions(BaseModel):
    include_usage: bool = False


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class ChatCompletionRequest(_Request):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    tools: list[Any] | None = None


class CompletionRequest(_Request):
    prompt: str | list[str]
    max_tokens: int | None = Field(default=16, ge=1)  # OpenAI's default for completions
    echo: bool = False


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str | None = None


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: str
    logprobs: None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "tunesmith"
    root: str | None = None
    parent: str | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class LoadAdapter(BaseModel):
    """vLLM's ``/v1/load_lora_adapter`` body, so tools written for vLLM work unchanged."""

    lora_name: str = Field(min_length=1, max_length=64)
    lora_path: str = Field(min_length=1, max_length=4096)


class UnloadAdapter(BaseModel):
    lora_name: str = Field(min_length=1, max_length=64)


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


_Request.model_rebuild()
ChatCompletionRequest.model_rebuild()
CompletionRequest.model_rebuild()


FEEDBACK_KINDS = ("thumbs", "rating", "choice", "ranking", "correction")


def log_id(response_id: str) -> str:
    """The request log's id for a response id (``chatcmpl-<id>``, ``cmpl-<id>``) or a bare ``X-Request-ID``."""
    return next((response_id[len(p) :] for p in ("chatcmpl-", "cmpl-") if response_id.startswith(p)), response_id)


class FeedbackRequest(BaseModel):
    """``POST /v1/feedback``: a judgement of an answered request, linked by its id.

    ``request_id`` is the ``X-Request-ID`` the server returned or the response's ``id``
    (``chatcmpl-...``/``cmpl-...``). ``value`` by ``kind``: ``thumbs`` ``"up"``/``"down"`` (or true/false);
    ``rating`` a number (on ``scale``, default 1-5); ``choice`` the index of the best of the request's ``n``
    answers; ``ranking`` all answer indices, best first; ``correction`` the answer it should have given;
    ``comparison`` the id of another logged request for the same prompt whose answer this one's beat (two
    models side by side, as the dashboard's playground asks).
    """

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=80)
    kind: Literal["thumbs", "rating", "choice", "ranking", "correction", "comparison"]
    value: bool | int | float | str | list[int]
    scale: tuple[float, float] = (1.0, 5.0)
    comment: str | None = Field(default=None, max_length=4000)

    def normalised(self) -> Any:
        """The value in its stored form, or ValueError naming what is wrong for this kind."""
        value = self.value
        if self.kind == "thumbs":
            if value in (True, "up", 1):
                return "up"
            if value in (False, "down", -1, 0):
                return "down"
            raise ValueError("thumbs takes 'up' or 'down' (or true/false)")
        if self.kind == "rating":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError("rating takes a number")
            low, high = self.scale
            if not low <= value <= high:
                raise ValueError(f"rating {value} is outside the scale {low}-{high}")
            return float(value)
        if self.kind == "choice":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError("choice takes the 0-based index of the best answer")
            return value
        if self.kind == "ranking":
            if not isinstance(value, list) or len(value) < 2:
                raise ValueError("ranking takes a list of answer indices, best first")
            return value
        if self.kind == "comparison":
            if not isinstance(value, str) or not value.strip():
                raise ValueError("comparison takes the id of the request whose answer this one's beat")
            other = log_id(value)
            if other == log_id(self.request_id):
                raise ValueError("comparison names the same request twice")
            return other
        if not isinstance(value, str) or not value.strip():
            raise ValueError("correction takes the answer the model should have given")
        return value


class FeedbackAccepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    request_id: str
    kind: str
