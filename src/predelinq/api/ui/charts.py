"""The dashboard's charts as Plotly figures: plain ``{"data": [...], "layout": {...}}``
dictionaries that ``static/ui.js`` hands to ``Plotly.newPlot``. Built as dictionaries, not
with ``plotly.graph_objects``: the pages need only the JSON, and the package's validation
costs milliseconds per figure that the 300 ms page budget is better without.

Each function takes the values a page already holds and returns one figure; none reads the
database. Colours follow the run's status everywhere: success green, rejected amber,
failed red."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

Figure = dict[str, Any]

STATUS_COLOURS = {"success": "#2e7d32", "rejected": "#ef8f00", "failed": "#c62828"}
REFERENCE_COLOUR = "#90a4ae"
CURRENT_COLOUR = "#1565c0"
HEIGHT = 320
DAY = timedelta(days=1)


def _figure(data: list[dict[str, Any]], **layout: Any) -> Figure:
    base: dict[str, Any] = {
        "height": HEIGHT,
        "margin": {"l": 60, "r": 20, "t": 30, "b": 50},
        "legend": {"orientation": "h", "y": -0.2},
        "font": {"family": "system-ui, sans-serif", "size": 12},
        "paper_bgcolor": "white",
        "plot_bgcolor": "#fafafa",
    }
    return {"data": data, "layout": {**base, **layout}}


def auc_over_retrains(runs: Sequence[dict[str, Any]], realised: dict[str, float]) -> Figure:
    """Test AUC of every run by date, a trace per status; ``realised``: a version's realised
    AUC on matured labels, drawn at the date of the run that trained it."""
    data: list[dict[str, Any]] = []
    for status, colour in STATUS_COLOURS.items():
        chosen = [run for run in runs if run["status"] == status and run["auc_score"] is not None]
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"test AUC, {status}",
                "x": [_run(run) for run in chosen],
                "y": [run["auc_score"] for run in chosen],
                "text": [run["model_version"] or "" for run in chosen],
                "marker": {"color": colour, "size": 10},
            }
        )
    measured = [run for run in runs if run["model_version"] in realised]
    data.append(
        {
            "type": "scatter",
            "mode": "markers",
            "name": "realised AUC",
            "x": [_run(run) for run in measured],
            "y": [realised[run["model_version"]] for run in measured],
            "text": [run["model_version"] for run in measured],
            "marker": {"color": CURRENT_COLOUR, "symbol": "diamond-open", "size": 12},
        }
    )
    order = [_run(run) for run in runs]
    return _figure(
        data,
        yaxis={"title": {"text": "AUC"}},
        xaxis={
            "title": {"text": "run"},
            "type": "category",
            "categoryorder": "array",
            "categoryarray": order,
        },
    )


def _run(run: dict[str, Any]) -> str:
    return f"#{run['retrain_id']}"


def gate_deltas(runs: Sequence[dict[str, Any]], tolerance: float) -> Figure:
    """The gate's ΔAUC (challenger − champion) per run with its 95% interval, coloured by the
    run's status, and the tolerance its lower end must stay above."""
    judged = [run for run in runs if run.get("delta")]
    deltas = [run["delta"] for run in judged]
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": "ΔAUC (95% interval)",
            "x": [_run(run) for run in judged],
            "y": [delta["estimate"] for delta in deltas],
            "error_y": {
                "type": "data",
                "symmetric": False,
                "array": [delta["high"] - delta["estimate"] for delta in deltas],
                "arrayminus": [delta["estimate"] - delta["low"] for delta in deltas],
            },
            "marker": {
                "size": 10,
                "color": [STATUS_COLOURS.get(run["status"], "#555") for run in judged],
            },
        }
    ]
    if judged:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"−tolerance ({tolerance})",
                "x": [_run(judged[0]), _run(judged[-1])],
                "y": [-tolerance, -tolerance],
                "line": {"dash": "dash", "color": STATUS_COLOURS["failed"]},
            }
        )
    return _figure(
        data,
        yaxis={"title": {"text": "ΔAUC vs champion"}, "zeroline": True},
        xaxis={"title": {"text": "run"}, "type": "category"},
    )


def trigger_levels(names: Sequence[str], levels: Sequence[float], fired: Sequence[bool]) -> Figure:
    """Each trigger's value as a share of its threshold: 1 is where it fires."""
    colours = [STATUS_COLOURS["rejected"] if f else CURRENT_COLOUR for f in fired]
    return _figure(
        [
            {
                "type": "bar",
                "x": list(names),
                "y": list(levels),
                "marker": {"color": colours},
                "name": "value / threshold",
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": "fires at 1",
                "x": [names[0], names[-1]] if names else [],
                "y": [1, 1],
                "line": {"dash": "dash", "color": STATUS_COLOURS["failed"]},
            },
        ],
        yaxis={"title": {"text": "value / threshold"}, "rangemode": "tozero"},
        xaxis={"type": "category"},
    )


def durations(runs: Sequence[dict[str, Any]]) -> Figure:
    """Seconds per run, coloured by status."""
    return _figure(
        [
            {
                "type": "bar",
                "x": [f"#{run['retrain_id']}" for run in runs],
                "y": [run["training_duration_seconds"] or 0.0 for run in runs],
                "marker": {"color": [STATUS_COLOURS.get(run["status"], "#555") for run in runs]},
                "text": [run["status"] for run in runs],
                "name": "seconds",
            }
        ],
        yaxis={"title": {"text": "seconds"}},
        xaxis={"title": {"text": "run"}, "type": "category"},
    )


def realised_by_month(
    periods: Sequence[str],
    auc: Sequence[float | None],
    low: Sequence[float | None],
    high: Sequence[float | None],
    expected: float | None,
) -> Figure:
    """The champion's realised AUC per month with its 95% interval, and the AUC expected
    when it was trained."""
    errors_up = [None if a is None or h is None else h - a for a, h in zip(auc, high, strict=True)]
    errors_down = [
        None if a is None or lo is None else a - lo for a, lo in zip(auc, low, strict=True)
    ]
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "realised AUC (95% interval)",
            "x": list(periods),
            "y": list(auc),
            "error_y": {
                "type": "data",
                "symmetric": False,
                "array": errors_up,
                "arrayminus": errors_down,
            },
            "marker": {"color": CURRENT_COLOUR, "size": 8},
        }
    ]
    if expected is not None and periods:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "expected at training",
                "x": [periods[0], periods[-1]],
                "y": [expected, expected],
                "line": {"dash": "dash", "color": REFERENCE_COLOUR},
            }
        )
    return _figure(
        data, yaxis={"title": {"text": "AUC"}}, xaxis={"title": {"text": "month observed"}}
    )


def importance(values: dict[str, float], top: int = 15) -> Figure:
    """Mean |contribution| per feature, the ``top`` largest, largest at the top."""
    chosen = list(values.items())[:top][::-1]
    return _figure(
        [
            {
                "type": "bar",
                "orientation": "h",
                "x": [value for _, value in chosen],
                "y": [name for name, _ in chosen],
                "marker": {"color": CURRENT_COLOUR},
                "name": "mean |contribution|",
            }
        ],
        height=max(HEIGHT, 24 * len(chosen) + 80),
        yaxis={"automargin": True},
        xaxis={"title": {"text": "mean |contribution| (log-odds)"}},
    )


def calibration(deciles: Sequence[dict[str, float]]) -> Figure:
    """Observed rate against mean predicted score per decile, and the diagonal."""
    predicted = [row["mean_score"] for row in deciles]
    top = max([*predicted, *(row["observed_rate"] for row in deciles), 0.05])
    return _figure(
        [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "deciles",
                "x": predicted,
                "y": [row["observed_rate"] for row in deciles],
                "text": [f"{int(row['rows'])} rows" for row in deciles],
                "marker": {"color": CURRENT_COLOUR, "size": 9},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": "perfect calibration",
                "x": [0, top],
                "y": [0, top],
                "line": {"dash": "dash", "color": REFERENCE_COLOUR},
            },
        ],
        xaxis={"title": {"text": "mean predicted"}},
        yaxis={"title": {"text": "observed rate"}},
    )


def bin_labels(edges: Sequence[float]) -> list[str]:
    """A label per score bin of inner cut points ``edges``: "< e0", "e0–e1", ..., ">= en"."""
    if not edges:
        return ["all"]
    inner = [f"{a:.3f}–{b:.3f}" for a, b in zip(edges, edges[1:], strict=False)]
    return [f"< {edges[0]:.3f}", *inner, f">= {edges[-1]:.3f}"]


def score_histogram(
    edges: Sequence[float], reference: Sequence[float], current: Sequence[float] | None
) -> Figure:
    """Share of customers per score bin: the training reference against the population now."""
    labels = bin_labels(edges)[: len(reference)]
    data: list[dict[str, Any]] = [
        {
            "type": "bar",
            "name": "training reference",
            "x": labels,
            "y": list(reference),
            "marker": {"color": REFERENCE_COLOUR},
        }
    ]
    if current is not None:
        data.append(
            {
                "type": "bar",
                "name": "population now",
                "x": labels,
                "y": list(current)[: len(labels)],
                "marker": {"color": CURRENT_COLOUR},
            }
        )
    return _figure(
        data,
        barmode="group",
        height=HEIGHT + 60,
        margin={"l": 60, "r": 20, "t": 30, "b": 110},
        legend={"orientation": "h", "y": -0.45},
        xaxis={"title": {"text": "score bin"}, "type": "category", "tickangle": -35},
        yaxis={"title": {"text": "share of customers"}},
    )


def psi_heatmap(
    dates: Sequence[date], names: Sequence[str], psi: list[list[float | None]]
) -> Figure:
    """PSI per feature (rows) and date (columns)."""
    return _figure(
        [
            {
                "type": "heatmap",
                "x": [day.isoformat() for day in dates],
                "y": list(names),
                "z": psi,
                # light for stable, dark red from the usual 0.25 alarm
                "colorscale": [[0, "#fffde7"], [0.2, "#ffe082"], [0.5, "#fb8c00"], [1, "#b71c1c"]],
                "zmin": 0,
                "zmax": 0.5,
                "colorbar": {"title": {"text": "PSI"}},
                "hoverongaps": False,
            }
        ],
        height=max(HEIGHT, 18 * len(names) + 100),
        xaxis={"type": "category", "title": {"text": "as of"}},
        yaxis={"autorange": "reversed", "automargin": True},  # the most drifted feature at the top
    )


def score_over_time(
    edges: Sequence[float],
    reference: Sequence[float],
    dates: Sequence[date],
    shares: list[list[float]],
) -> Figure:
    """The score's distribution at each date (a line each) over the reference's bins."""
    labels = bin_labels(edges)[: len(reference)]
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "training reference",
            "x": labels,
            "y": list(reference),
            "line": {"dash": "dash", "color": REFERENCE_COLOUR},
        }
    ]
    for day, row in zip(dates, shares, strict=True):
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": day.isoformat(),
                "x": labels,
                "y": row[: len(labels)],
            }
        )
    return _figure(
        data,
        xaxis={"title": {"text": "score bin"}, "type": "category"},
        yaxis={"title": {"text": "share of customers"}},
    )


def score_history(rows: Sequence[dict[str, Any]]) -> Figure:
    """A customer's logged scores over time (``served_at``, a datetime), a trace per model
    version; a day either side when every score was served at one moment."""
    versions = sorted({row["model_version"] for row in rows})
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": version,
            "x": [_moment(row["served_at"]) for row in rows if row["model_version"] == version],
            "y": [row["score"] for row in rows if row["model_version"] == version],
            "marker": {"size": 8},
        }
        for version in versions
    ]
    xaxis: dict[str, Any] = {"type": "date", "title": {"text": "served at (UTC)"}}
    moments = [row["served_at"] for row in rows]
    if moments and min(moments) == max(moments):
        xaxis["range"] = [_moment(moments[0] - DAY), _moment(moments[0] + DAY)]
    return _figure(data, xaxis=xaxis, yaxis={"title": {"text": "score"}, "rangemode": "tozero"})


def _moment(moment: datetime) -> str:
    return moment.isoformat(sep=" ", timespec="seconds")


def reasons(labels: Sequence[str], contributions: Sequence[float]) -> Figure:
    """The largest risk-increasing contributions, largest at the top."""
    return _figure(
        [
            {
                "type": "bar",
                "orientation": "h",
                "x": list(contributions)[::-1],
                "y": list(labels)[::-1],
                "marker": {"color": STATUS_COLOURS["failed"]},
                "name": "contribution",
            }
        ],
        yaxis={"automargin": True},
        xaxis={"title": {"text": "contribution (log-odds)"}},
    )
