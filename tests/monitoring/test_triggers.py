"""The triggers judged on figures given by hand: each fires at its threshold and not below,
the cooldown holds every trigger but the seed's, and the reason names every trigger fired."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from predelinq.config import Settings
from predelinq.config_tables import (
    DriftTrigger,
    MaxAgeTrigger,
    NewCustomersTrigger,
    NewLabelsTrigger,
    PerformanceTrigger,
    TriggerSettings,
)
from predelinq.monitoring.triggers import (
    TRIGGERS,
    Observed,
    Realised,
    TriggerResult,
    evaluate,
    trigger_reason,
)

SETTINGS = Settings(
    database_url="sqlite:///unused.db",
    triggers=TriggerSettings(max_age=MaxAgeTrigger(enabled=True, days=90)),
)
QUIET = Observed(
    champion="v1",
    new_customers=0,
    new_labels=1,  # some label unused (below the threshold): drift, performance, age may fire
    score_psi=0.01,
    feature_psi={"a": 0.01, "b": 0.02, "c": 0.0},
    realised=Realised(auc=0.80, auc_low=0.75, auc_high=0.85, rows=1000, expected_auc=0.80),
    champion_age_days=1.0,
    hours_since_retrain=1000.0,
)


def judged(observed: Observed, settings: Settings = SETTINGS) -> dict[str, TriggerResult]:
    results = evaluate(settings, observed)
    assert [result.name for result in results] == list(TRIGGERS)
    return {result.name: result for result in results}


def with_(**changes: Any) -> Observed:
    return replace(QUIET, **changes)


def test_without_an_unused_label_drift_performance_and_age_report_but_do_not_fire():
    alarming = with_(
        score_psi=0.9,
        realised=Realised(auc=0.6, auc_low=0.55, auc_high=0.65, rows=1000, expected_auc=0.8),
        champion_age_days=400.0,
    )
    assert all(judged(alarming)[name].fired for name in ("drift", "performance", "max_age"))
    results = judged(replace(alarming, new_labels=0))
    for name in ("drift", "performance", "max_age"):
        assert not results[name].fired
        assert "no unused labels" in results[name].detail
    assert trigger_reason(results.values()) == ""


def test_nothing_fires_on_quiet_figures():
    results = judged(QUIET)
    assert not any(result.fired or result.held for result in results.values())
    assert trigger_reason(results.values()) == ""


@pytest.mark.parametrize(
    ("name", "below", "at"),
    [
        ("new_customers", {"new_customers": 49}, {"new_customers": 50}),
        ("new_labels", {"new_labels": 499}, {"new_labels": 500}),
        ("drift", {"score_psi": 0.2499}, {"score_psi": 0.25}),
        ("max_age", {"champion_age_days": 89.9}, {"champion_age_days": 90.0}),
    ],
)
def test_a_trigger_fires_at_its_threshold_and_not_below(name, below, at):
    assert not judged(with_(**below))[name].fired
    fired = judged(with_(**at))[name]
    assert fired.fired and fired.value == next(iter(at.values()))
    others = [result for key, result in judged(with_(**at)).items() if key != name]
    assert not any(result.fired for result in others)


def test_drift_fires_on_enough_drifted_features_without_the_score():
    two = {"a": 0.3, "b": 0.26, "c": 0.1, "d": 0.0}
    assert not judged(with_(feature_psi=two))["drift"].fired
    three = two | {"c": 0.25}
    drift = judged(with_(feature_psi=three))["drift"]
    assert drift.fired and drift.value == QUIET.score_psi
    assert "3 of 4 features at PSI >= 0.25 (a, b, c)" in drift.detail
    # the feature rule alone, even with no score PSI observed
    assert judged(with_(score_psi=None, feature_psi=three))["drift"].fired


def test_performance_is_judged_on_the_upper_bound_of_the_interval():
    floor = 0.80 - 0.05
    low_but_uncertain = Realised(0.70, 0.60, floor, 1000, 0.80)  # upper bound at the floor
    assert not judged(with_(realised=low_but_uncertain))["performance"].fired
    clearly_low = Realised(0.70, 0.66, floor - 0.001, 1000, 0.80)
    result = judged(with_(realised=clearly_low))["performance"]
    assert result.fired and result.value == 0.70 and result.threshold == pytest.approx(floor)
    few_rows = Realised(0.50, 0.40, 0.60, 199, 0.80)
    result = judged(with_(realised=few_rows))["performance"]
    assert not result.fired and "fewer than 200" in result.detail
    one_class = Realised(None, None, None, 1000, 0.80)
    assert not judged(with_(realised=one_class))["performance"].fired
    unknown_expectation = Realised(0.5, 0.4, 0.6, 1000, None)
    assert not judged(with_(realised=unknown_expectation))["performance"].fired


def test_the_cooldown_holds_every_trigger_but_new_customers():
    everything = with_(
        new_customers=60,
        new_labels=600,
        score_psi=0.4,
        realised=Realised(0.6, 0.55, 0.65, 1000, 0.8),
        champion_age_days=100.0,
    )
    assert all(result.fired for result in judged(everything).values())
    cooling = judged(replace(everything, hours_since_retrain=23.9))
    assert cooling["new_customers"].fired and not cooling["new_customers"].held
    for name in ("new_labels", "drift", "performance", "max_age"):
        assert not cooling[name].fired and cooling[name].held, name
        assert "held by the cooldown: last retrain 23.9 h ago" in cooling[name].detail
    assert trigger_reason(cooling.values()) == "new_customers: 60 >= 50"
    after = judged(replace(everything, hours_since_retrain=24.0))
    assert all(result.fired for result in after.values())
    no_cooldown = SETTINGS.model_copy(
        update={"triggers": SETTINGS.triggers.model_copy(update={"cooldown_hours": 0.0})}
    )
    just_now = judged(replace(everything, hours_since_retrain=0.0), no_cooldown)
    assert all(result.fired for result in just_now.values())


def test_the_reason_names_every_trigger_fired_in_order():
    results = judged(with_(new_labels=1000, score_psi=0.31, champion_age_days=120.0))
    reason = trigger_reason(results.values())
    assert reason == (
        "new_labels: 1000 >= 500; "
        "drift: score PSI 0.310 >= 0.25; 0 of 3 features at PSI >= 0.25, fewer than 3; "
        "max_age: champion 120.0 days old >= 90"
    )


def test_without_a_champion_only_the_seeds_rule_fires():
    """The first model comes from the seed's rule; labels alone do not train one."""
    first = Observed(new_customers=10, new_labels=5000, hours_since_retrain=None)
    results = judged(first)
    assert not any(result.fired for result in results.values())
    assert "no model in service" in results["new_labels"].detail
    assert judged(Observed(new_customers=50, new_labels=5000))["new_customers"].fired


def test_disabled_triggers_never_fire_and_say_so():
    settings = Settings(
        database_url="sqlite:///unused.db",
        triggers=TriggerSettings(
            new_customers=NewCustomersTrigger(enabled=False),
            new_labels=NewLabelsTrigger(enabled=False),
            drift=DriftTrigger(enabled=False),
            performance=PerformanceTrigger(enabled=False),
        ),
    )
    loud = with_(
        new_customers=10_000,
        new_labels=10_000,
        score_psi=5.0,
        realised=Realised(0.5, 0.45, 0.55, 1000, 0.9),
        champion_age_days=1000.0,
    )
    results = judged(loud, settings)
    assert not any(result.fired for result in results.values())  # max_age: off by default
    assert {result.detail for result in results.values()} == {"disabled"}


def test_missing_figures_do_not_fire_and_say_why():
    observed = with_(score_psi=None, feature_psi=None, realised=None, notes={"drift": "no profile"})
    results = judged(observed)
    assert not results["drift"].fired and results["drift"].detail == "no PSI: no profile"
    assert results["performance"].detail == "no realised AUC: not observed"


def test_the_json_has_the_issues_keys():
    result = judged(with_(new_labels=700))["new_labels"]
    assert result.as_json() == {
        "name": "new_labels",
        "fired": True,
        "value": 700,
        "threshold": 500,
        "detail": "700 >= 500",
        "held": False,
    }
