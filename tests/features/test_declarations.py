"""Feature declarations: parsing (built-in and a user's), the errors a bad entry gives, the
fingerprints a model records, and ``predelinq features list`` through the real command."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any, get_args

import pytest

from predelinq.features.declarations import (
    AGGREGATIONS,
    CATEGORIES,
    CONDITION_OPS,
    INCOME_CATEGORY,
    NOT_INCOME_CATEGORIES,
    Agg,
    FeatureDeclarationError,
    FeatureMismatchError,
    Op,
    fingerprints,
    model_columns,
)
from predelinq.features.parse import BUILTIN_PATH, builtin_features, feature_set, parse_feature
from support.cli import run_cli

BUILTIN_ENTRIES: list[dict[str, Any]] = [
    entry
    for family in tomllib.loads(BUILTIN_PATH.read_text(encoding="utf-8"))["family"]
    for entry in family["features"]
]
BUILTIN_NAMES = [entry["name"] for entry in BUILTIN_ENTRIES]

FEE_SHARE = {
    "name": "fee_share_90",
    "description": "fees / all debits",
    "source": "transactions",
    "where": {"category": ["fees", "penalty_interest"], "txn_type": "debit"},
    "value": "amount",
    "agg": "sum",
    "window": 90,
    "ratio": {"where": {"txn_type": "debit"}, "value": "amount", "agg": "sum", "window": 90},
}
DEEP_OVERDRAFT = {
    "name": "days_deep_overdraft_90",
    "source": "transactions",
    "where": {"balance": {"lt": -500}},
    "agg": "days",
    "window": 90,
}


# --- parsing -----------------------------------------------------------------------------------


def test_builtin_names_are_unique_and_match_the_file():
    names = [f.name for f in builtin_features()]
    assert names == BUILTIN_NAMES
    assert len(set(names)) == len(names)
    assert all(f.origin == "built-in" and f.family for f in builtin_features())


@pytest.mark.parametrize("entry", BUILTIN_ENTRIES, ids=BUILTIN_NAMES)
def test_every_builtin_parses_and_is_in_the_users_vocabulary(entry):
    # declared again by a user under another name, a built-in means the same
    builtin = {f.name: f for f in builtin_features()}[entry["name"]]
    as_user = feature_set([{**entry, "name": f"my_{entry['name']}"}]).features[-1]
    assert as_user.aggregate == builtin.aggregate
    assert (as_user.scale, as_user.minus, as_user.ratio, as_user.transform) == (
        builtin.scale,
        builtin.minus,
        builtin.ratio,
        builtin.transform,
    )
    assert as_user.family == "user" and builtin.family != "user"


def test_user_features_follow_the_builtins_with_their_origin():
    features = feature_set([FEE_SHARE, DEEP_OVERDRAFT], origin="/etc/lender.toml")
    assert features.names == (*BUILTIN_NAMES, "fee_share_90", "days_deep_overdraft_90")
    fee_share, deep = features.features[-2:]
    assert fee_share.origin == "/etc/lender.toml [[features]] #1 ('fee_share_90')"
    assert deep.origin == "/etc/lender.toml [[features]] #2 ('days_deep_overdraft_90')"
    assert fee_share.description == "fees / all debits"
    assert fee_share.aggregate.window == 90 and fee_share.aggregate.value == "amount"
    assert deep.aggregate.agg == "days"


def test_ratio_and_minus_may_name_a_feature_declared_before():
    later = {
        "name": "deep_minus_builtin",
        "source": "transactions",
        "where": {"balance": {"lt": -500}},
        "agg": "days",
        "window": 90,
        "minus": "od_days_below_zero_90",  # a built-in
        "ratio": "days_deep_overdraft_90",  # the user's previous one
    }
    feature = feature_set([DEEP_OVERDRAFT, later]).features[-1]
    assert (feature.minus, feature.ratio) == ("od_days_below_zero_90", "days_deep_overdraft_90")


def count(**extra: Any) -> dict[str, Any]:
    """A valid entry named ``bad`` (count of transactions), with ``extra`` keys."""
    return {"name": "bad", "source": "transactions", "agg": "count", **extra}


def tx_sum(**extra: Any) -> dict[str, Any]:
    return {"name": "bad", "source": "transactions", "agg": "sum", "value": "amount", **extra}


BAD_ENTRIES = {
    "unknown key": (count(windw=30), "unknown key(s) windw"),
    "missing name": ({"source": "transactions", "agg": "count"}, "`name` must be a word"),
    "name not a word": (count(name="fee-share"), "'fee-share'"),
    "name a number": (count(name=7), "`name` must be a word"),
    "duplicate of a built-in": (count(name="bal_last"), "'bal_last' already exists"),
    "unknown source": (count(source="ledger"), "`source` must be one of"),
    "missing source": ({"name": "bad", "agg": "count"}, "`source` must be one of"),
    "unknown agg": (count(agg="median"), "unknown `agg` 'median'"),
    "days on payments": (
        {"name": "bad", "source": "payments", "agg": "days"},
        "`agg = 'days'` is not available for payments",
    ),
    "value on customers": (
        {"name": "bad", "source": "customers", "agg": "sum", "value": "credit_limit"},
        "not available for customers",
    ),
    "sum without value": (count(agg="sum"), "needs a numeric `value`"),
    "sum of a text": (tx_sum(value="category"), "needs a numeric `value`"),
    "sum of an unknown field": (tx_sum(value="amount_due"), "(got 'amount_due')"),
    "value on count": (count(value="amount"), "`agg = 'count'` takes no `value`"),
    "window 0": (count(window=0), "`window` must be a whole number of days >= 1"),
    "window -1": (count(window=-1), "(got -1)"),
    "window text": (count(window="x"), "(got 'x')"),
    "window fractional": (count(window=1.5), "(got 1.5)"),
    "negative offset": (count(window=30, offset=-1), "`offset` must be whole days >= 0"),
    "offset without window": (count(offset=30), "an `offset` needs a `window` in days"),
    "period agg without window": (
        count(agg="periods_with"),
        "needs a `window` that is a multiple of 30 days",
    ),
    "period agg, window 45": (
        count(agg="periods_without", window=45),
        "needs a `window` that is a multiple of 30 days",
    ),
    "window on a customers value": (
        {
            "name": "bad",
            "source": "customers",
            "agg": "value",
            "value": "credit_limit",
            "window": 30,
        },
        "takes no window",
    ),
    "where on customers": (
        {
            "name": "bad",
            "source": "customers",
            "agg": "value",
            "value": "credit_limit",
            "where": {"credit_limit": 1},
        },
        "customers features take no `where`",
    ),
    "unknown field in where": (count(where={"colour": "red"}), "unknown field 'colour'"),
    "payments field in a transactions where": (
        count(where={"late": True}),
        "unknown field 'late' of transactions",
    ),
    "text compared with a number": (count(where={"txn_type": 1}), "'txn_type' is a text field"),
    "number compared with a text": (count(where={"amount": "100"}), "'amount' is a number field"),
    "flag compared with a text": (count(where={"income": "yes"}), "'income' is a flag field"),
    "number compared with a flag": (count(where={"amount": True}), "'amount' is a number field"),
    "array with a wrong type": (
        count(where={"category": ["fees", 3]}),
        "'category' is a text field; 3 cannot",
    ),
    "lt on a text field": (
        count(where={"category": {"lt": "m"}}),
        "`lt` needs a number field, not 'category'",
    ),
    "ge on a flag field": (count(where={"income": {"ge": True}}), "`ge` needs a number field"),
    "unknown operator": (count(where={"amount": {"between": 1}}), "condition on 'amount'"),
    "in without an array": (count(where={"category": {"in": "fees"}}), "`in` on 'category'"),
    "empty where": (count(where={}), "`where` must be a table of conditions"),
    "unknown transform": (count(transform="sqrt"), "unknown transform 'sqrt'"),
    "scale text": (count(scale="2"), "`scale` must be a finite number"),
    "ratio naming an undeclared feature": (
        count(ratio="nowhere"),
        "`ratio` names 'nowhere', which is not a feature declared before it",
    ),
    "minus naming itself": (count(minus="bad"), "`minus` names 'bad'"),
    "inline ratio with a bad key": (
        count(ratio={"agg": "count", "name": "x"}),
        "inline `ratio` takes only",
    ),
    "inline ratio with a bad agg": (
        count(ratio={"agg": "median"}),
        "('bad') `ratio`: unknown `agg` 'median'",
    ),
    "description not text": (count(description=3), "`description` must be text"),
}


@pytest.mark.parametrize(
    ("entry", "problem"), list(BAD_ENTRIES.values()), ids=list(BAD_ENTRIES.keys())
)
def test_a_bad_entry_is_named_with_its_problem(entry, problem):
    # the bad entry is the second of the file, after a good one
    with pytest.raises(FeatureDeclarationError) as error:
        feature_set([DEEP_OVERDRAFT, entry], origin="lender.toml")
    message = str(error.value)
    name = entry.get("name")
    label = "lender.toml [[features]] #2" + (f" ({name!r})" if isinstance(name, str) else ":")
    assert message.startswith(label), message
    assert problem in message
    assert "\n" not in message


def test_ratio_naming_a_later_feature_is_an_error_on_the_first():
    first = count(name="first", ratio="second")
    with pytest.raises(FeatureDeclarationError, match=r"#1 \('first'\).*'second', which is not"):
        feature_set([first, count(name="second")])


def test_duplicate_user_names():
    with pytest.raises(FeatureDeclarationError, match=r"#2 \('twice'\): .*'twice' already exists"):
        feature_set([count(name="twice"), count(name="twice", window=30)])


def test_an_entry_that_is_not_a_table():
    with pytest.raises(FeatureDeclarationError, match=r"lender.toml \[\[features\]\] #1: "):
        entries: list[Any] = ["fee_share_90"]  # a TOML array may hold anything
        feature_set(entries, origin="lender.toml")


def test_parse_feature_names_where_it_is():
    with pytest.raises(FeatureDeclarationError, match=r"^somewhere: unknown `agg`"):
        parse_feature(count(agg="nope"), where="somewhere", known=[])


def test_every_aggregation_has_a_source():
    assert all(sources for _, _, sources in AGGREGATIONS.values())


def test_the_typed_vocabulary_and_its_tables_list_the_same_words():
    assert get_args(Agg) == tuple(AGGREGATIONS)
    assert get_args(Op) == tuple(CONDITION_OPS)


def test_the_canonical_categories_are_what_the_features_read_and_the_docs_list():
    named: set[str] = set()
    for feature in builtin_features():
        aggregates = [feature.aggregate, *(r for r in (feature.minus, feature.ratio) if r)]
        for aggregate in aggregates:
            if isinstance(aggregate, str):
                continue
            for alternative in aggregate.where:
                for condition in alternative:
                    if condition.field == "category":
                        value = condition.value
                        named |= set(value) if isinstance(value, tuple) else {value}
    assert named | {INCOME_CATEGORY, *NOT_INCOME_CATEGORIES} == set(CATEGORIES)
    assert len(CATEGORIES) == len(set(CATEGORIES))
    docs = (Path(__file__).parents[2] / "docs" / "features.md").read_text(encoding="utf-8")
    sentence = re.search(r"Canonical categories the built-in features read:(.*?)\.\n", docs, re.S)
    assert sentence is not None
    listed = re.findall(r"`([a-z_]+)`", sentence.group(1))
    assert listed == list(CATEGORIES)


def test_a_flag_value_on_transactions_is_computed_or_refused():
    from datetime import date

    import polars as pl

    from predelinq.features import features_at_date

    entry = {"name": "income_share", "source": "transactions", "value": "income", "agg": "mean"}
    try:
        features = feature_set([entry])
    except FeatureDeclarationError:
        return  # refused when declared: fine
    inputs = {
        "customers": pl.DataFrame({"customer_id": ["C"]}),
        "transactions": pl.DataFrame(
            {
                "txn_id": ["T1"],
                "customer_id": ["C"],
                "txn_time": [date(2024, 6, 1)],
                "amount": [10.0],
                "txn_type": ["credit"],
                "category": ["salary"],
            }
        ),
        "payments": pl.DataFrame({"customer_id": [], "due_date": []}),
    }
    row = features_at_date(["C"], date(2024, 7, 1), inputs, features).row(0, named=True)
    assert row["income_share"] == 1.0


@pytest.mark.parametrize("name", ["customer_id", "observation_date"])
def test_a_feature_named_like_an_output_column_is_refused(name):
    with pytest.raises(FeatureDeclarationError, match=name):
        feature_set([count(name=name)])


# --- fingerprints and what a model records ---------------------------------------------------


def test_unchanged_declarations_have_the_same_fingerprints():
    one = feature_set([FEE_SHARE, DEEP_OVERDRAFT], {"POPLATEK": "fees"})
    two = feature_set([dict(FEE_SHARE), dict(DEEP_OVERDRAFT)], {"POPLATEK": "fees"})
    assert fingerprints(one) == fingerprints(two)
    assert one.fingerprint() == two.fingerprint()
    assert len(fingerprints(one)) == len(one.names)


def test_description_and_origin_are_not_part_of_the_definition():
    one = feature_set([FEE_SHARE], origin="a.toml")
    two = feature_set([{**FEE_SHARE, "description": "reworded"}], origin="elsewhere/b.toml")
    assert fingerprints(one) == fingerprints(two)
    assert one.fingerprint() == two.fingerprint()


def test_changing_one_window_changes_that_fingerprint_and_the_sets():
    before = feature_set([FEE_SHARE, DEEP_OVERDRAFT])
    after = feature_set([FEE_SHARE, {**DEEP_OVERDRAFT, "window": 60}])
    old, new = fingerprints(before), fingerprints(after)
    assert old["days_deep_overdraft_90"] != new["days_deep_overdraft_90"]
    assert {k: v for k, v in old.items() if k != "days_deep_overdraft_90"} == {
        k: v for k, v in new.items() if k != "days_deep_overdraft_90"
    }
    assert before.fingerprint() != after.fingerprint()


@pytest.mark.parametrize(
    "change",
    [
        {"where": {"category": "fees", "txn_type": "debit"}},
        {"scale": 2.0},
        {"transform": "log1p"},
        {"ratio": {"where": {"txn_type": "debit"}, "value": "amount", "agg": "sum", "window": 30}},
        {"offset": 30},
    ],
    ids=lambda change: next(iter(change)),
)
def test_any_change_of_definition_changes_the_fingerprint(change):
    before = fingerprints(feature_set([FEE_SHARE]))["fee_share_90"]
    assert fingerprints(feature_set([{**FEE_SHARE, **change}]))["fee_share_90"] != before


def test_the_category_mapping_is_part_of_the_sets_fingerprint():
    assert feature_set([], {"POPLATEK": "fees"}).fingerprint() != feature_set([]).fingerprint()


def details_of(features, names=None) -> dict[str, Any]:
    """What a model trained on ``features`` (or some of them) records."""
    return {
        "feature_names": list(names or features.names),
        "feature_fingerprints": fingerprints(features),
    }


def test_model_columns_maps_a_models_names_to_columns():
    features = feature_set([FEE_SHARE, DEEP_OVERDRAFT])
    assert model_columns("v1", details_of(features), features) == list(range(len(features.names)))
    names = ["days_deep_overdraft_90", "bal_last", "fee_share_90"]
    position = {name: k for k, name in enumerate(features.names)}
    assert model_columns("v1", details_of(features, names), features) == [
        position[name] for name in names
    ]


def test_a_model_trained_before_a_new_user_feature_still_scores():
    trained = feature_set([FEE_SHARE])
    now = feature_set([FEE_SHARE, DEEP_OVERDRAFT])
    columns = model_columns("v1", details_of(trained), now)
    assert [now.names[k] for k in columns] == list(trained.names)


def test_model_columns_refuses_a_feature_no_longer_declared():
    trained = feature_set([FEE_SHARE, DEEP_OVERDRAFT])
    with pytest.raises(FeatureMismatchError) as error:
        model_columns("v7", details_of(trained), feature_set([FEE_SHARE]))
    message = str(error.value)
    assert "model v7" in message
    assert "no longer declared: days_deep_overdraft_90" in message
    assert "fee_share_90" not in message


def test_model_columns_refuses_a_feature_declared_differently():
    trained = feature_set([FEE_SHARE, DEEP_OVERDRAFT])
    now = feature_set([FEE_SHARE, {**DEEP_OVERDRAFT, "where": {"balance": {"lt": -1000}}}])
    with pytest.raises(FeatureMismatchError) as error:
        model_columns("v7", details_of(trained), now)
    message = str(error.value)
    assert "declared differently now: days_deep_overdraft_90" in message
    assert "fee_share_90" not in message


def test_model_columns_refuses_a_model_without_fingerprints():
    features = feature_set()
    details = {"feature_names": list(features.names)}
    with pytest.raises(FeatureMismatchError, match="records no feature definitions"):
        model_columns("v0", details, features)
    with pytest.raises(FeatureMismatchError, match="records no feature definitions"):
        model_columns("v0", {**details, "feature_fingerprints": {}}, features)


# --- predelinq features list --------------------------------------------------------------------


USER_TOML = """
[categories]
"POPLATEK" = "fees"

[[features]]
name = "fee_share_of_debits_90"
description = "fees / all debits, last 90 days"
source = "transactions"
where = { category = "fees", txn_type = "debit" }
value = "amount"
agg = "sum"
window = 90
ratio = { where = { txn_type = "debit" }, value = "amount", agg = "sum", window = 90 }

[[features]]
name = "days_deep_overdraft_90"
source = "transactions"
where = { balance = { lt = -500 } }
agg = "days"
window = 90
"""


def list_features(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> subprocess.CompletedProcess[str]:
    """``predelinq features list --json`` with ``config`` as the configuration file."""
    monkeypatch.setenv("PREDELINQ_CONFIG", str(config))
    return run_cli("features", "list", "--json", cwd=config.parent)


def test_features_list_shows_builtins_then_the_users_with_their_origin(tmp_path, monkeypatch):
    config = tmp_path / "lender.toml"
    config.write_text(USER_TOML, encoding="utf-8")

    result = list_features(config, monkeypatch)

    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    names = [row["name"] for row in rows]
    assert names == [*BUILTIN_NAMES, "fee_share_of_debits_90", "days_deep_overdraft_90"]
    assert {row["origin"] for row in rows[: len(BUILTIN_NAMES)]} == {"built-in"}
    fee_share, deep = rows[-2:]
    assert fee_share["origin"] == f"{config} [[features]] #1 ('fee_share_of_debits_90')"
    assert deep["origin"] == f"{config} [[features]] #2 ('days_deep_overdraft_90')"
    assert fee_share["family"] == "user" and fee_share["source"] == "transactions"
    assert fee_share["description"] == "fees / all debits, last 90 days"
    assert deep["definition"] == "days, transactions where balance < -500, last 90 days"
    assert fee_share["definition"] == (
        "(sum of amount, transactions where category = fees and txn_type = debit, last 90 days)"
        " / (sum of amount, transactions where txn_type = debit, last 90 days)"
    )


def test_features_list_without_user_features(tmp_path, monkeypatch):
    config = tmp_path / "empty.toml"
    config.write_text("", encoding="utf-8")
    result = list_features(config, monkeypatch)
    assert result.returncode == 0, result.stderr
    assert [row["name"] for row in json.loads(result.stdout)] == BUILTIN_NAMES


def test_a_bad_entry_stops_the_command_with_one_line_naming_it(tmp_path, monkeypatch):
    config = tmp_path / "lender.toml"
    bad = USER_TOML.replace('agg = "days"', 'agg = "days"\noffset = 7\nwindw = 90')
    config.write_text(bad, encoding="utf-8")

    result = list_features(config, monkeypatch)

    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{config} [[features]] #2 ('days_deep_overdraft_90'): unknown key(s) windw" in lines[0]
