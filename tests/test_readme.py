"""The README is true where a program can tell: its tables, commands, settings, endpoints and
file list are parsed and held against the code.

- the command table is one table holding every CLI command, each with every option it has,
  and every ``predelinq ...`` line anywhere uses options its command has;
- the settings table is exactly the ``Settings`` fields, each with its environment variable,
  TOML key and (where it is a literal) its default;
- every curl example and every endpoint named in the HTTP API section reaches a route of the
  app with that method, its query parameters and JSON keys exist, and every route has an
  example;
- the exit-code table lists exactly the CLI's exit codes;
- the Architecture file list names every package and module of ``src/predelinq``.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.routing import Match

from predelinq.api import create_app
from predelinq.cli.app import app as cli_app
from predelinq.config import Settings
from support.cli import command_paths

ROOT = Path(__file__).parents[1]
SRC = ROOT / "src" / "predelinq"
README = (ROOT / "README.md").read_text(encoding="utf-8")
ROOT_COMMAND = typer.main.get_command(cli_app)


# -- reading the README ---------------------------------------------------------------------


def section(title: str) -> str:
    """The text of ``## title`` up to the next ``## `` heading."""
    parts = re.split(r"^## (.+)$", README, flags=re.M)
    found = dict(zip(parts[1::2], parts[2::2], strict=True))
    assert title in found, f"the README has no '## {title}' section"
    return found[title]


def table(first_header: str, text: str = README) -> list[list[str]]:
    """The body rows of the Markdown table whose header starts with ``| first_header |``: its
    contiguous ``|`` lines (a blank line ends a table), cells stripped, ``\\|`` unescaped."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |")]
    assert len(starts) == 1, f"expected one table headed '{first_header}', found {len(starts)}"
    rows = []
    for line in lines[starts[0] + 2 :]:
        if not line.startswith("|"):
            break
        cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
        rows.append([cell.strip().replace("\\|", "|") for cell in cells])
    return rows


def code(cell: str) -> str:
    """The text of a cell that is one code span."""
    match = re.fullmatch(r"`([^`]*)`", cell)
    assert match, f"expected one code span, not {cell!r}"
    return match.group(1)


def code_spans(text: str) -> list[str]:
    """Inline code spans (fenced blocks removed first)."""
    return re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))


def code_block_lines(text: str) -> list[str]:
    """Lines of fenced code blocks (the file list aside), backslash continuations joined."""
    lines: list[str] = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        if not block.startswith("src/predelinq/"):
            lines += block.replace("\\\n", " ").splitlines()
    return lines


# -- the CLI ---------------------------------------------------------------------------------


def click_command(words: list[str]) -> Any:
    """The click command (Typer's own copy of click) of ``words``; a group has ``commands``."""
    command = ROOT_COMMAND
    for word in words:
        subcommands = getattr(command, "commands", {})
        assert word in subcommands, f"{' '.join(words)}: {word!r} is not a command"
        command = subcommands[word]
    return command


def options(command: Any, *, secondary: bool = True) -> set[str]:
    """A command's options; ``secondary``: with the ``--no-x`` of each ``--x`` flag."""
    names = {"--help"}
    for param in command.params:
        if param.param_type_name == "option":
            names |= {*param.opts, *(param.secondary_opts if secondary else ())}
    return names


OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
WORD = re.compile(r"[a-z][a-z-]*")
COMMANDS = set(command_paths())
GROUPS = {" ".join(path.split()[:-1]) for path in COMMANDS if " " in path}


@dataclass(frozen=True)
class Invocation:
    text: str  # as the README writes it
    words: list[str]  # the command's words, e.g. ["features", "export"]
    options: list[str]


def invocation(text: str) -> Invocation:
    """``predelinq WORDS... [ARGS/OPTIONS]``: the longest run of words naming a command."""
    tokens = text.split()
    assert tokens and tokens[0] == "predelinq", text
    words: list[str] = []
    for token in tokens[1:]:
        candidate = " ".join([*words, token])
        if not WORD.fullmatch(token) or candidate not in COMMANDS | GROUPS:
            break
        words.append(token)
    rest = tokens[1 + len(words) :]
    if rest and WORD.fullmatch(rest[0]) and not words:
        pytest.fail(f"`{text}`: predelinq has no command {rest[0]!r}")
    return Invocation(text, words, OPTION.findall(" ".join(rest)))


def invocations_in_prose_and_examples() -> Iterator[Invocation]:
    """Every ``predelinq ...`` in a code span or a code block line, cut at shell operators."""
    texts = code_spans(README) + code_block_lines(README)
    for text in texts:
        text = text.split(" # ")[0].replace("\\|", " ")
        for segment in re.split(r"&&|;|\|\||(?<!\\)\||>>|>|\)", text):
            # a command word after the executable, as written on Linux, Windows or in a unit file
            match = re.search(r"(?:^|[\s/\\\"=\[])predelinq(?:\.exe)?(?=[\s\",]|$)(.*)", segment)
            rest = re.sub(r"[\",\[\]]", " ", match.group(1)).strip() if match else ""
            if rest:
                yield invocation(f"predelinq {rest}")


COMMAND_ROWS = table("command", section("Commands"))
TABLE_COMMANDS = {" ".join(invocation(code(row[0])).words): row for row in COMMAND_ROWS}


def test_the_command_table_is_one_table_of_every_command():
    written = [" ".join(invocation(code(row[0])).words) for row in COMMAND_ROWS]
    assert len(written) == len(set(written)), "a command has two rows"
    assert set(written) == COMMANDS, (
        f"missing from the table: {sorted(COMMANDS - set(written))}; "
        f"not commands: {sorted(set(written) - COMMANDS)}"
    )


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_a_command_row_shows_exactly_the_options_of_its_command(path):
    row = TABLE_COMMANDS.get(path)
    assert row is not None, f"`predelinq {path}` has no row in the command table"
    shown = set(invocation(code(row[0])).options)
    command = click_command(path.split())
    unknown = shown - options(command)
    assert not unknown, f"`predelinq {path}` has no {sorted(unknown)}"
    hidden = options(command, secondary=False) - {"--help"} - shown
    assert not hidden, f"the row of `predelinq {path}` does not show {sorted(hidden)}"


def test_every_predelinq_line_uses_commands_and_options_that_exist():
    found = list(invocations_in_prose_and_examples())
    assert len(found) > 30, "the README's predelinq lines were not found"
    for call in found:
        if call.words and " ".join(call.words) in GROUPS and not call.options:
            continue  # the group itself, e.g. `predelinq features`
        unknown = set(call.options) - options(click_command(call.words))
        assert not unknown, f"`{call.text}`: no option {sorted(unknown)}"


# -- settings ---------------------------------------------------------------------------------


SETTING_ROWS = {code(row[0]): row for row in table("setting", section("Configuration"))}


def test_the_settings_table_is_exactly_the_settings():
    assert len(SETTING_ROWS) == len(table("setting", section("Configuration"))), "a repeated row"
    assert set(SETTING_ROWS) == set(Settings.model_fields)


def _aliases(name: str) -> list[str]:
    alias = Settings.model_fields[name].validation_alias
    return [str(choice) for choice in getattr(alias, "choices", [])]


def _toml_key(name: str) -> str:
    """How a field is written in predelinq.toml: ``key``, ``[table]`` or ``[[array]]``."""
    annotation = Settings.model_fields[name].annotation
    origin = getattr(annotation, "__origin__", annotation)
    if origin is list:
        return f"[[{name}]]"
    if origin is dict or (isinstance(origin, type) and issubclass(origin, BaseModel)):
        return f"[{name}]"
    return name


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_a_setting_row_has_its_environment_variable_and_toml_key(name):
    row = SETTING_ROWS.get(name)
    assert row is not None, f"the settings table has no row for `{name}`"
    _, env, toml_key, *_ = row
    variables = [alias for alias in _aliases(name) if alias.isupper()]
    if env == "(TOML only)":
        assert not variables, f"`{name}` is read from {variables} too"
    else:
        assert [code(env)] == variables, f"`{name}` is read from {variables}"
    assert code(toml_key) == _toml_key(name)
    if code(toml_key) == name:
        assert name in _aliases(name), f"predelinq.toml cannot set `{name}` by that key"


def _literal(text: str) -> object:
    """A default as written in the table: TOML's syntax, else the text itself."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


@pytest.mark.parametrize(
    "name",
    [
        name
        for name, row in SETTING_ROWS.items()
        # one code span, not the name of the setting it defaults to (`threads`)
        if re.fullmatch(r"`[^`]+`", row[3]) and code(row[3]) not in Settings.model_fields
    ],
)
def test_a_literal_default_in_the_settings_table_is_the_default(name):
    default = Settings.model_fields[name].default
    if isinstance(default, tuple):
        default = list(default)
    elif isinstance(default, Path):
        default = str(default)
    assert _literal(code(SETTING_ROWS[name][3])) == default


# -- endpoints ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api() -> FastAPI:
    return create_app(Settings(database_url="sqlite:///unused.db", dev_mode=True))


def routes_to(api: FastAPI, method: str, path: str) -> Match:
    """How the app's router matches a request: FULL (path and method), PARTIAL (the path with
    another method) or NONE."""
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
    matches = [route.matches(scope)[0] for route in api.router.routes]
    return max(matches, key=lambda match: match.value, default=Match.NONE)


@dataclass(frozen=True)
class Curl:
    line: str
    method: str
    path: str
    query: list[str]
    body: object


def curl_examples() -> list[Curl]:
    found = []
    for line in code_block_lines(section("HTTP API")):
        if not line.lstrip().startswith("curl "):
            continue
        tokens = shlex.split(line.split(" # ")[0])
        method = tokens[tokens.index("-X") + 1] if "-X" in tokens else "GET"
        body = json.loads(tokens[tokens.index("-d") + 1]) if "-d" in tokens else None
        (url,) = [token for token in tokens if token.startswith("http")]
        path, _, query = re.sub(r"^https?://[^/]+", "", url).partition("?")
        names = [pair.partition("=")[0] for pair in query.split("&") if pair]
        found.append(Curl(line.strip(), method, path, names, body))
    return found


CURLS = curl_examples()


def template_pattern(template: str) -> str:
    """``/models/{version}`` as a pattern that ``/models/VERSION`` matches."""
    return re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))


def _operation(api: FastAPI, curl: Curl) -> dict[str, Any]:
    """The OpenAPI operation of the most literal path template the example's path matches
    (``/models/rollback`` rather than ``/models/{version}``), with the example's method."""
    paths = api.openapi()["paths"]
    templates = [t for t in paths if re.fullmatch(template_pattern(t), curl.path)]
    assert templates, f"{curl.line}: no endpoint {curl.path}"
    template = min(templates, key=lambda t: t.count("{"))
    assert curl.method.lower() in paths[template], f"{curl.line}: {template} has no {curl.method}"
    operation: dict[str, Any] = paths[template][curl.method.lower()]
    return operation


def test_the_curl_examples_were_found():
    assert len(CURLS) >= 10


@pytest.mark.parametrize("curl", CURLS, ids=lambda curl: f"{curl.method} {curl.path}")
def test_a_curl_example_reaches_a_route_with_its_method(api, curl):
    assert routes_to(api, curl.method, curl.path) == Match.FULL, curl.line
    operation = _operation(api, curl)
    parameters = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    assert set(curl.query) <= parameters, f"{curl.line}: no query parameter {curl.query}"
    if isinstance(curl.body, dict):
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        name = schema["$ref"].rpartition("/")[2]
        properties = api.openapi()["components"]["schemas"][name]["properties"]
        assert set(curl.body) <= set(properties), f"{curl.line}: {sorted(curl.body)}"


def test_every_route_of_the_api_has_a_curl_example(api):
    examples = {(curl.method, curl.path) for curl in CURLS}
    for template, operations in api.openapi()["paths"].items():
        pattern = template_pattern(template)
        for method in operations:
            assert any(
                m == method.upper() and re.fullmatch(pattern, path) for m, path in examples
            ), f"no curl example for {method.upper()} {template}"


ENDPOINT = re.compile(r"/[a-z][a-z0-9_./-]*")


def test_every_endpoint_named_in_the_http_api_section_exists(api):
    named = {span for span in code_spans(section("HTTP API")) if ENDPOINT.fullmatch(span)}
    assert {"/docs", "/health", "/metrics"} <= named
    for path in named:
        assert routes_to(api, "GET", path) != Match.NONE or routes_to(api, "POST", path) != (
            Match.NONE
        ), f"`{path}` is not an endpoint"


# -- exit codes -------------------------------------------------------------------------------


def test_the_exit_code_table_lists_exactly_the_cli_exit_codes():
    from predelinq.cli.common import ExitCode

    written = [int(code(row[0])) for row in table("Code", section("Commands"))]
    assert sorted(written) == written and len(set(written)) == len(written)
    assert written == sorted(int(member) for member in ExitCode)


# -- the file list ----------------------------------------------------------------------------


def file_list() -> dict[str, str]:
    """The Architecture section's list: top-level entry (``db/``, ``config.py``) -> its text
    (an entry starts two spaces in; deeper lines continue it)."""
    (block,) = [
        block
        for block in re.findall(r"```\n(.*?)```", section("Architecture"), flags=re.S)
        if block.startswith("src/predelinq/")
    ]
    entries: dict[str, str] = {}
    last = ""
    for line in block.splitlines()[1:]:
        if re.match(r"^  \S", line):
            last, _, text = line.strip().partition(" ")
            entries[last] = text
        elif line.startswith("   ") and last:
            entries[last] += " " + line.strip()
    return entries


def modules() -> dict[str, list[Path]]:
    """Top-level entry -> the module files it holds (Alembic revisions aside)."""
    found: dict[str, list[Path]] = {}
    for path in sorted(SRC.iterdir()):
        if path.suffix == ".py" and path.name != "__init__.py":
            found[path.name] = [path]
        elif (path / "__init__.py").exists():
            found[path.name + "/"] = [
                file
                for file in sorted(path.rglob("*.py"))
                if file.name != "__init__.py" and "migrations" not in file.parts
            ]
    return found


def test_the_file_list_names_every_package_and_module():
    listed = file_list()
    actual = modules()
    assert set(listed) == set(actual), (
        f"not listed: {sorted(set(actual) - set(listed))}; "
        f"listed but absent: {sorted(set(listed) - set(actual))}"
    )
    for entry, files in actual.items():
        for file in files if entry.endswith("/") else []:
            assert re.search(rf"(?<![\w.]){re.escape(file.name)}\b", listed[entry]), (
                f"the file list's `{entry}` does not name {file.relative_to(SRC)}"
            )


def test_the_quickstart_has_the_two_commands():
    quickstart = section("Quickstart")
    assert "make demo" in quickstart and "make test" in quickstart
