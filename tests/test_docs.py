"""docs/features.md documents every built-in feature (its generated tables in step with
builtin.toml), aggregation and field; docs/architecture.md every package; and every file,
folder and link that the README and the docs name exists. (tests/test_readme.py holds the
README's tables, commands and endpoints to the code.)"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from predelinq.features import builtin_features, feature_set
from predelinq.features.declarations import AGGREGATIONS, FIELDS
from predelinq.features.docs import END, START, with_builtin_tables

ROOT = Path(__file__).parents[1]
SRC = ROOT / "src" / "predelinq"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FEATURES_DOC = (ROOT / "docs" / "features.md").read_text(encoding="utf-8")
ARCHITECTURE_DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("feature", builtin_features(), ids=lambda feature: feature.name)
def test_every_builtin_feature_is_documented(feature):
    row = f"| `{feature.name}` |"
    assert row in FEATURES_DOC, f"docs/features.md has no table row for {feature.name}"


def test_the_generated_feature_tables_are_in_step_with_builtin_toml():
    assert FEATURES_DOC.count(START) == 1 and FEATURES_DOC.count(END) == 1
    assert with_builtin_tables(FEATURES_DOC) == FEATURES_DOC, (
        "docs/features.md is out of step with builtin.toml: run `python -m predelinq.features.docs`"
    )


@pytest.mark.parametrize("agg", sorted(AGGREGATIONS))
def test_every_aggregation_is_documented(agg):
    assert f"`{agg}`" in FEATURES_DOC


@pytest.mark.parametrize(
    ("source", "field"),
    [(source, field) for source, fields in FIELDS.items() for field in fields],
    ids=lambda value: value,
)
def test_every_field_is_documented(source, field):
    assert f"`{field}`" in FEATURES_DOC
    assert f"`{source}`" in FEATURES_DOC


def test_the_worked_example_parses():
    section = FEATURES_DOC.split("## A worked example", 1)[1]
    (block,) = re.findall(r"```toml\n(.*?)```", section.split("\n## ", 1)[0], flags=re.S)
    document = tomllib.loads(block)
    features = feature_set(document["features"], document["categories"])
    assert features.names[-2:] == ("fee_share_of_debits_90", "days_deep_overdraft_90")
    assert features.features[-2].origin == (
        "predelinq.toml [[features]] #1 ('fee_share_of_debits_90')"
    )


def _code_spans(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))


def test_the_architecture_names_every_package():
    entries = [
        f"{path.name}/" if path.is_dir() else path.name
        for path in sorted(SRC.iterdir())
        if (path / "__init__.py").exists() or (path.suffix == ".py" and path.name != "__init__.py")
    ]
    spans = set(_code_spans(ARCHITECTURE_DOC))
    assert [entry for entry in entries if entry not in spans] == []


# A path as the docs write it: `features/online.py`, `db/readers/`, `check_and_retrain.py`
# (relative to the repository or to src/predelinq). Names of files a user makes
# (`predelinq.toml`) or that a run makes (`data/models`) are not checked.
TOP = {path.name for path in SRC.iterdir() if path.is_dir()} | {"src", "tests", "bench", "docs"}


def _named_paths(path: Path) -> list[str]:
    return [
        span
        for span in _code_spans(path.read_text(encoding="utf-8"))
        if re.fullmatch(r"[\w.-]+(/[\w.-]+)*/?", span)
        and (span.endswith(".py") or ("/" in span and span.split("/")[0] in TOP))
    ]


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_file_and_folder_the_docs_name_exists(doc):
    named = _named_paths(doc)
    missing = [span for span in named if not ((ROOT / span).exists() or (SRC / span).exists())]
    assert missing == [], f"{doc.name} names files that do not exist"


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_relative_link_resolves(doc):
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8"))
    local = [link for link in links if "://" not in link]
    assert [link for link in local if not (doc.parent / link).exists()] == []


def test_the_entries_of_the_data_path_are_defined():
    """The functions and classes docs/architecture.md names as each step's entry exist."""
    section = ARCHITECTURE_DOC.split("## The data's path", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    names = [name for row in rows[1:] for name in _code_spans(row.split("|")[3])]
    sources = "\n".join(path.read_text(encoding="utf-8") for path in SRC.rglob("*.py"))
    assert len(names) >= 8
    for name in names:
        if not name.startswith("/"):  # an endpoint
            assert re.search(rf"^(async )?(def|class) {re.escape(name)}\b", sources, re.M), name
