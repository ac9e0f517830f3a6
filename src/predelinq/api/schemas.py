"""API request and response schemas (separate from the tables), named as a family."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from predelinq.statuses import JobStatus, PredictionSource, RunStatus


def _storable_text(value: str) -> str:
    """Text a database can hold: no NUL character, valid Unicode (no lone surrogates)."""
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError("must be valid Unicode text") from error
    return value


CustomerId = Annotated[
    str,
    Field(min_length=1, max_length=255, pattern=r"^[^\x00]*$"),  # the schema says it too
    AfterValidator(_storable_text),
]

# The observation dates the API scores at (422 outside): a lender's data lies within them, and
# date arithmetic far outside them overflows (``as_of`` 0001-01-01 was a 500).
EARLIEST_AS_OF = date(1900, 1, 1)
LATEST_AS_OF = date(2999, 12, 31)
AsOf = Annotated[
    date,
    # the range in the schema too, for clients and schema-driven tests (JSON Schema has no
    # minimum for a date)
    Field(ge=EARLIEST_AS_OF, le=LATEST_AS_OF, json_schema_extra={"pattern": r"^(19|2\d)\d\d-"}),
]


class ErrorResponse(BaseModel):
    detail: str


class JobConflict(ErrorResponse):
    """409 from a trigger while a retrain runs."""

    running_job_id: str | None


class RetrainingRun(BaseModel):
    retrain_id: int
    retrain_date: str
    customers_trained: int | None
    samples_trained: int | None
    auc_score: float | None
    model_version: str | None


class RetrainingHistoryRow(RetrainingRun):
    precision_score: float | None
    recall_score: float | None
    f1_score: float | None
    trigger_reason: str | None
    training_duration_seconds: float | None
    status: RunStatus
    promoted: bool
    error: str | None


class RetrainingStatus(BaseModel):
    new_customers_count: int
    retraining_needed: bool
    reason: str
    threshold: int
    recent_retraining: list[RetrainingRun]
    running: str | None = Field(None, description="Job id of the retrain in progress, if any.")


class JobPublic(BaseModel):
    job_id: str
    status: JobStatus
    created_at: str
    started_at: str | None
    finished_at: str | None
    reason: str | None
    model_version: str | None
    promoted: bool
    metrics: dict[str, float | None] | None
    error: str | None


class TriggerAccepted(BaseModel):
    job_id: str
    status: JobStatus
    location: str


class TriggerResult(BaseModel):
    """The seed's trigger response, plus ``promoted`` and the job id."""

    status: JobStatus
    message: str
    customers_trained: int | None
    samples_trained: int | None
    auc: float | None
    model_version: str | None
    promoted: bool
    job_id: str


class Request(BaseModel):
    """A request body: a misspelt field is a 422, never silently ignored (a rollback body
    with ``to_version`` instead of ``to`` rolled back to the previous champion)."""

    model_config = ConfigDict(extra="forbid")


class PredictRequest(Request):
    customer_id: CustomerId
    as_of: AsOf | None = Field(
        None, description="Observation date (1900-01-01 to 2999-12-31); default today (UTC)."
    )


class Contribution(BaseModel):
    feature: str
    value: float | None
    contribution: float


LastEventAt = Annotated[
    datetime | None,
    Field(
        description="The newest transaction, payment due date or payment (of payments due) before "
        "as_of that the score used; null when the customer has none."
    ),
]
DataAgeDays = Annotated[
    int | None,
    Field(
        description="Whole days from last_event_at to as_of: a large age means the score "
        "describes the customer as they were then."
    ),
]


class PredictResponse(BaseModel):
    customer_id: str
    as_of: date
    risk_score: float
    risk_band: str
    model_version: str
    top_features: list[Contribution]
    last_event_at: LastEventAt
    data_age_days: DataAgeDays


class BatchPredictRequest(Request):
    customer_ids: list[CustomerId] = Field(min_length=1, max_length=100_000)
    as_of: AsOf | None = Field(
        None, description="Observation date (1900-01-01 to 2999-12-31); default today (UTC)."
    )


class BatchPrediction(BaseModel):
    customer_id: str
    risk_score: float
    risk_band: str
    last_event_at: LastEventAt
    data_age_days: DataAgeDays


class BatchPredictResponse(BaseModel):
    as_of: date
    model_version: str
    predictions: list[BatchPrediction]
    unknown_customer_ids: list[str]


class LoggedPrediction(BaseModel):
    """A score served, as the prediction log holds it."""

    customer_id: str
    as_of: date
    model_version: str
    score: float
    band: str
    served_at: datetime = Field(description="When it was served (UTC).")
    source: PredictionSource = Field(description="predict, batch or score (the CLI).")
    request_id: str = Field(description="The request's X-Request-ID; one per `score` run.")


class ModelVersionPublic(BaseModel):
    model_version: str
    created_at: str
    champion: bool
    auc_score: float | None
    threshold: float
    sha256: str


class ModelVersionDetail(ModelVersionPublic):
    details: dict[str, Any]


class ChampionMove(BaseModel):
    champion: str
    previous: str | None


class RollbackRequest(Request):
    to: str | None = Field(None, description="A version; default: the previous champion.")


class Health(BaseModel):
    status: str
    model_version: str | None
