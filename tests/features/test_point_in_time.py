"""Point in time, and the engines against the reference, on drawn histories.

Hypothesis draws small histories: two customers with a customers row and one without, a
few dozen transactions around the window edges (microseconds either side of them, same-time
ties ordered by ``txn_id``, ``balance_after`` sometimes given and sometimes not, lender
category codes, monthly recurring credits), and statements paid early, late, partly, after
t or never. Every declared feature (the built-in ones and tests/data/user_features.toml's)
is checked on both engines:

* rows on or after t (transactions at exactly t or later, statements due on or after t,
  payments made on or after t), added or changed, change no feature for t;
* the engines equal the plain reference of ``support/reference_features.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.histories import (
    CATEGORIES,
    EARLY,
    ENGINES,
    EVERYONE,
    FEATURES,
    OBS,
    OBSERVATIONS,
    after,
    amounts,
    data_of,
    examples,
    histories,
    note_history,
    statement_row,
    transaction,
)
from support.reference_features import (
    assert_features_equal,
    feature_mismatches,
    reference_from,
)

# ---------------------------------------------------------------------------------------------
# (a) rows on or after t change nothing for t


@st.composite
def changed_from(draw, history: Mapping[str, list[dict]], cut: date) -> dict[str, list[dict]]:
    """``history`` with every row on or after ``cut`` changed at will, rows on or after it
    added, and statements due before it paid (again) on or after it."""
    cut_time = datetime(cut.year, cut.month, cut.day)
    transactions = []
    for row in history["transactions"]:
        if row["txn_time"] >= cut_time and draw(st.booleans()):
            row = {
                **row,
                "amount": draw(amounts),
                "txn_type": draw(st.sampled_from(["debit", "credit"])),
                "category": draw(st.sampled_from(CATEGORIES)),
                "balance_after": draw(st.sampled_from([None, -9999.0, 12345.0])),
                "txn_time": draw(after(cut_time)),
            }
        if row["txn_time"] < cut_time or draw(st.integers(0, 4)):  # and some go away
            transactions.append(row)
    added = draw(st.lists(transaction(after(cut_time)), min_size=1, max_size=6))
    for k, row in enumerate(added):
        row["txn_id"] = draw(st.sampled_from([None, f"N{k}", "A0"])) if k else None
    payments = []
    for row in history["payments"]:
        if row["due_date"] >= cut:  # not due yet at cut: anything may change
            row = {**draw(statement_row(row["customer_id"], row["due_date"]))}
        elif (row["paid_date"] is None or row["paid_date"] >= cut) and draw(st.booleans()):
            # unpaid at cut: paid (again) on or after it
            paid = cut + timedelta(days=draw(st.integers(0, 40)))
            row = {**row, "paid_date": paid, "amount_paid": draw(amounts)}
        payments.append(row)
    taken = {(p["customer_id"], p["due_date"]) for p in payments}
    for who in EVERYONE:
        for d in draw(st.lists(st.integers(0, 60), max_size=2, unique=True)):
            if (who, cut + timedelta(days=d)) not in taken:
                payments.append(draw(statement_row(who, cut + timedelta(days=d))))
    return {
        "customers": history["customers"],
        "transactions": transactions + added,
        "payments": payments,
    }


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_rows_on_or_after_t_change_no_feature(engine, data):
    cut = data.draw(st.sampled_from([EARLY, OBS]), label="cut")
    history = data.draw(histories(future=True), label="history")
    later = data.draw(changed_from(history, cut), label="later")
    seen = [(c, d) for c, d in OBSERVATIONS if d <= cut]  # t <= cut: everything changed is >= t
    note_history("history", history)
    note_history("later", later)
    compute = ENGINES[engine]
    mismatches = feature_mismatches(
        compute(data_of(history, seen), FEATURES),
        compute(data_of(later, seen), FEATURES),
        FEATURES.names,
        rtol=0,  # the same rows before t: the same digits
        atol=0,
    )
    assert not mismatches, "rows on or after t changed features:\n" + "\n".join(mismatches)


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_reference_ignores_rows_on_or_after_t_too(data):
    cut = data.draw(st.sampled_from([EARLY, OBS]), label="cut")
    history = data.draw(histories(future=True), label="history")
    later = data.draw(changed_from(history, cut), label="later")
    seen = [(c, d) for c, d in OBSERVATIONS if d <= cut]
    assert_features_equal(
        reference_from(data_of(history, seen), FEATURES),
        reference_from(data_of(later, seen), FEATURES),
        FEATURES.names,
        rtol=0,
        atol=0,
    )


# ---------------------------------------------------------------------------------------------
# (b) the engines equal the reference on drawn histories


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories(future=True))
def test_engines_equal_the_reference_on_drawn_histories(engine, history):
    note_history("history", history)
    data = data_of(history)
    unresolved: set[tuple[int, str]] = set()
    expected = reference_from(data, FEATURES, unresolved)
    got = ENGINES[engine](data, FEATURES)
    assert_features_equal(expected, got, FEATURES.names, FEATURES, skip=unresolved)
