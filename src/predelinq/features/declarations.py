"""The feature vocabulary: every feature is one declaration, data, read by both engines.

A declaration says which rows of which source table count (``source``, ``where``), which
value of each row (``value``), how the rows are reduced (``agg``) over which time window
(``window`` days ending ``offset`` days before the observation date ``t``), and how the
result is finished (``scale``, then ``minus`` and ``ratio`` another feature, then
``transform``). The built-in features (``builtin.toml``) and a user's ``[[features]]`` in
``predelinq.toml`` use this same vocabulary; docs/features.md documents it.

``FeatureSet`` is the resolved list a model is trained on, with a fingerprint that changes
whenever any feature's definition (or the category mapping) changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from predelinq.errors import PredelinqError

Source = Literal["transactions", "payments", "customers"]
SOURCES: tuple[Source, ...] = ("transactions", "payments", "customers")
EVENT_SOURCES: tuple[Source, ...] = ("transactions", "payments")  # rows in time: windows
SECOND_US = 1_000_000  # engines keep times as int64 microseconds since the epoch
DAY_US = 86_400 * SECOND_US
PERIOD_DAYS = 30  # the periods of periods_with, periods_without and period_cv

# Canonical transaction categories (docs/features.md): what the built-in features and the
# income rule read. A `[categories]` table maps a lender's codes onto them; other values are
# kept as they are (a feature may still name them).
INCOME_CATEGORY = "salary"  # a credit of this category is always income
NOT_INCOME_CATEGORIES = ("interest",)  # a credit of these is never income, even recurring
CATEGORIES = (
    INCOME_CATEGORY,
    "rent",
    "utilities",
    "loan",
    "fees",
    "penalty_interest",
    "returned_payment",
    "cash",
    *NOT_INCOME_CATEGORIES,
    "groceries",
    "dining",
    "entertainment",
    "shopping",
)

# The fields a declaration can name, per source: their kind, and what they mean (docs).
FieldKind = Literal["number", "text", "flag"]
FIELDS: dict[Source, dict[str, tuple[FieldKind, str]]] = {
    "transactions": {
        "amount": ("number", "the transaction's amount (always positive)"),
        "flow": ("number", "signed amount: + for a credit, - for a debit"),
        "balance": (
            "number",
            "balance right after the transaction: `balance_after` where given, else the "
            "last given balance plus the net flows since (without any: the running sum of "
            "net flows, a relative balance)",
        ),
        "txn_type": ("text", "`credit` or `debit`"),
        "category": ("text", "canonical category (lender codes mapped by `[categories]`)"),
        "channel": ("text", "channel as given (e.g. `atm`, `card`, `transfer`)"),
        "merchant_id": ("text", "merchant or counterparty as given"),
        "income": (
            "flag",
            "a credit that is income: category `salary`, or recurring (see docs/features.md)",
        ),
    },
    "payments": {
        "amount_due": ("number", "the statement's amount due"),
        "amount_paid": ("number", "amount paid as known at t (0 while unpaid at t)"),
        "days_late": ("number", "paid at t: max(0, paid - due); unpaid at t: t - due (days)"),
        "late": ("flag", "days late > 0"),
        "unpaid": ("flag", "not paid before t"),
        "partial": ("flag", "paid before t, less than the amount due"),
        "shortfall": ("number", "(due - paid at t) / due; NaN when nothing was due"),
        "utilisation": ("number", "amount due / the customer's credit limit"),
    },
    "customers": {
        "monthly_income": ("number", "declared monthly income"),
        "credit_limit": ("number", "credit limit"),
        "salary_day": ("number", "declared day of the month salary arrives"),
    },
}

Agg = Literal[
    "count",
    "sum",
    "mean",
    "min",
    "max",
    "std",
    "last",
    "first",
    "slope",
    "days_since_last",
    "days_since_first",
    "active_days",
    "periods_with",
    "periods_without",
    "period_cv",
    "days",
    "time_mean",
    "value",
]
# What each aggregation does (docs), whether it needs a value, and which sources allow it.
AGGREGATIONS: dict[Agg, tuple[str, bool, tuple[Source, ...]]] = {
    "count": ("rows", False, EVENT_SOURCES),
    "sum": ("sum of the value", True, EVENT_SOURCES),
    "mean": ("mean of the value", True, EVENT_SOURCES),
    "min": ("smallest value", True, EVENT_SOURCES),
    "max": ("largest value", True, EVENT_SOURCES),
    "std": ("sample standard deviation of the value (2+ rows)", True, EVENT_SOURCES),
    "last": ("value of the latest row", True, EVENT_SOURCES),
    "first": ("value of the earliest row", True, EVENT_SOURCES),
    "slope": (
        "least-squares trend of the value per day (2+ rows at different times)",
        True,
        EVENT_SOURCES,
    ),
    "days_since_last": ("days from the latest row to t", False, EVENT_SOURCES),
    "days_since_first": (
        "days from the earliest row to t (customers: from `created_at`)",
        False,
        SOURCES,
    ),
    "active_days": ("distinct calendar days (UTC) with a row", False, ("transactions",)),
    "periods_with": (
        "30-day periods of the window with a row",
        False,
        EVENT_SOURCES,
    ),
    "periods_without": (
        "30-day periods of the window without a row, counting only periods that start on or "
        "after the customer's first row of the source",
        False,
        EVENT_SOURCES,
    ),
    "period_cv": (
        "coefficient of variation (std / mean) of the value's 30-day sums, over the periods "
        "that start on or after the customer's first row (2+ periods)",
        True,
        EVENT_SOURCES,
    ),
    "days": (
        "days of the window during which the customer's latest transaction matched `where` "
        "(its state holds until the next transaction)",
        False,
        ("transactions",),
    ),
    "time_mean": (
        "time-weighted mean of the value while the latest transaction matched `where` "
        "(e.g. average daily balance)",
        True,
        ("transactions",),
    ),
    "value": ("the customer's field", True, ("customers",)),
}
WINDOWED: frozenset[Agg] = frozenset(a for a in AGGREGATIONS if a != "value")
PERIOD_AGGS: frozenset[Agg] = frozenset({"periods_with", "periods_without", "period_cv"})
# the state of the latest row holds until the next one: weighted by how long it held
TIME_WEIGHTED_AGGS: frozenset[Agg] = frozenset({"days", "time_mean"})
TRANSFORMS = ("log1p",)
Op = Literal["eq", "ne", "in", "not_in", "lt", "le", "gt", "ge"]
CONDITION_OPS: dict[Op, str] = {  # each operator and how the docs write it
    "eq": "=",
    "ne": "!=",
    "in": "in",
    "not_in": "not in",
    "lt": "<",
    "le": "<=",
    "gt": ">",
    "ge": ">=",
}
LIST_OPS: frozenset[Op] = frozenset({"in", "not_in"})  # take an array of values
ORDER_OPS: frozenset[Op] = frozenset({"lt", "le", "gt", "ge"})  # number fields only
RESERVED_NAMES = ("customer_id", "observation_date")
DECLARATION_KEYS = {
    "name",
    "source",
    "where",
    "value",
    "agg",
    "window",
    "offset",
    "scale",
    "minus",
    "ratio",
    "transform",
    "description",
}


class FeatureDeclarationError(PredelinqError, ValueError):
    """A feature declaration that cannot be computed; the message names it."""


@dataclass(frozen=True)
class Condition:
    field: str
    op: Op
    value: Any  # a scalar, or a tuple for in / not_in


Where = tuple[tuple[Condition, ...], ...]  # OR of ANDs; empty: every row


@dataclass(frozen=True)
class Aggregate:
    """One reduction over one source's rows in one window: the engines' unit of work."""

    source: Source
    agg: Agg
    value: str | None = None
    where: Where = ()
    window: int | None = None  # days; None: all history before t
    offset: int = 0  # the window ends this many days before t

    @property
    def periods(self) -> int:
        return (self.window or 0) // PERIOD_DAYS


@dataclass(frozen=True)
class Feature:
    name: str
    aggregate: Aggregate
    scale: float = 1.0
    minus: Aggregate | str | None = None  # another feature's name, or an inline aggregate
    ratio: Aggregate | str | None = None
    transform: str | None = None
    description: str = ""
    origin: str = "built-in"
    family: str = ""

    @property
    def source(self) -> Source:
        return self.aggregate.source

    def definition(self) -> dict[str, Any]:
        """What the feature computes (no description or origin): the fingerprint's input."""
        data = asdict(self)
        for key in ("description", "origin", "family"):
            data.pop(key)
        return data

    def fingerprint(self) -> str:
        return _sha256(self.definition())


@dataclass(frozen=True)
class FeatureSet:
    """The features a model takes, in column order, and the category mapping they read."""

    features: tuple[Feature, ...]
    categories: Mapping[str, str] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def fingerprint(self) -> str:
        return _sha256(
            {
                "features": [f.definition() for f in self.features],
                "categories": dict(sorted(self.categories.items())),
            }
        )

    def by_name(self) -> dict[str, Feature]:
        return {f.name: f for f in self.features}


def _sha256(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, default=list, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# ---- parsing ---------------------------------------------------------------------------------


def references(feature: Feature) -> list[Aggregate]:
    """The inline aggregates a feature needs besides its own."""
    return [r for r in (feature.minus, feature.ratio) if isinstance(r, Aggregate)]


class FeatureMismatchError(PredelinqError):
    """A model takes features that are no longer declared, or declared differently."""


def model_columns(version: str, details: Mapping[str, Any], features: FeatureSet) -> list[int]:
    """Where each of a model's features is in ``features``' columns, checked against the
    definitions the model recorded when it was trained (``feature_fingerprints``)."""
    names = list(details.get("feature_names") or [])
    recorded: Mapping[str, str] = details.get("feature_fingerprints") or {}
    current = features.by_name()
    missing = [name for name in names if name not in current]
    changed = [
        name
        for name in names
        if name in current
        and recorded
        and recorded.get(name) != definition_fingerprint(current[name], features.categories)
    ]
    if not names or missing or changed or not recorded:
        problems = []
        if missing:
            problems.append(f"no longer declared: {', '.join(missing[:8])}")
        if changed:
            problems.append(f"declared differently now: {', '.join(changed[:8])}")
        if not recorded and not missing:
            problems.append("it records no feature definitions (trained before they existed)")
        raise FeatureMismatchError(
            f"model {version} cannot be scored with today's features ({'; '.join(problems)}): "
            "retrain (`predelinq retrain`), or restore the feature declarations it was "
            "trained with"
        )
    position = {name: k for k, name in enumerate(features.names)}
    return [position[name] for name in names]


def fingerprints(features: FeatureSet) -> dict[str, str]:
    """What a model records of the features it was trained on."""
    return {f.name: definition_fingerprint(f, features.categories) for f in features.features}


def definition_fingerprint(feature: Feature, categories: Mapping[str, str]) -> str:
    """A feature's fingerprint with what it reads: a transactions feature reads the category
    mapping (through ``category`` and ``income``), so a changed mapping changes it."""
    if feature.source != "transactions" or not categories:
        return feature.fingerprint()
    return _sha256(
        {"feature": feature.fingerprint(), "categories": dict(sorted(categories.items()))}
    )
