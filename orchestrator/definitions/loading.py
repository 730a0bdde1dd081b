"""Load a drill file: YAML -> typed ``Drill`` plus its Chaos Toolkit experiment, or errors naming file, line, field.

Nothing here mutates anything: loading is what ``drill validate`` does, and what every run does first.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
import yaml

from orchestrator import errors, redaction
from orchestrator.definitions import limits, models, reading

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class LoadedDrill:
    """A valid drill and the experiment it runs, as read from disk."""

    path: Path
    drill: models.Drill
    experiment_path: Path
    experiment: dict[str, Any]
    raw: dict[str, Any]


def line_map(node: yaml.Node, path: Loc = (), out: dict[Loc, int] | None = None) -> dict[Loc, int]:
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value) if isinstance(key, yaml.ScalarNode) else "?")
            out[child] = key.start_mark.line + 1
            line_map(value, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            line_map(item, (*path, index), out)
    return out


def line_for(lines: dict[Loc, int], loc: Loc) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def short(text: str, limit: int = 40) -> str:
    """A key as long as a book would flood the terminal: keep its start and say how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}...({len(text):,} characters)"


def dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{short(part)}" if text else short(part))
    return text or "(document)"


def _parse_dotted(text: str) -> Loc:
    loc: list[str | int] = []
    for name, index in re.findall(r"([A-Za-z]\w*)|\[(\d+)\]", text):
        loc.append(name if name else int(index))
    return tuple(loc)


def describe(value: object) -> str:
    if isinstance(value, str | int | float | bool) or value is None:
        text = repr(value)
        return redaction.redact(text) if len(text) <= 60 else f"a {type(value).__name__} of {len(text)} characters"
    return f"a {type(value).__name__}"


def _model_at(loc: Loc) -> type[pydantic.BaseModel] | None:
    """The model class whose fields live at ``loc`` (aliases), to list the valid names.

    Where a field is a union of models (a target or policy told apart by ``kind``), the member that has the
    next field is followed."""
    candidates: list[Any] = [models.Drill]
    for part in loc:
        if isinstance(part, int):
            continue
        found: list[Any] = []
        for current in candidates:
            if not (isinstance(current, type) and issubclass(current, pydantic.BaseModel)):
                continue
            field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
            if field is not None:
                found.extend(_unwrap(field.annotation))
        if not found:
            return None
        candidates = found
    found_models = _models(candidates)
    return found_models[0] if len(found_models) == 1 else None


def _unwrap(annotation: Any) -> list[Any]:
    """The model classes inside Annotated[...], Optional[...], list[...] and unions of models."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if (isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)) or not args:
        return [annotation]
    if typing.get_origin(annotation) is typing.Annotated:
        return _unwrap(args[0])
    return [m for a in args for m in _unwrap(a)]


def _models(args: Sequence[Any]) -> list[type[pydantic.BaseModel]]:
    return [a for a in args if isinstance(a, type) and issubclass(a, pydantic.BaseModel)]


_TAGS: dict[str, type[pydantic.BaseModel]] = {
    **dict.fromkeys(models.KUBE_POLICY_KINDS, models.KubernetesPolicy),
    "sandbox-autorestart": models.SandboxAutorestartPolicy,
    "sandbox": models.SandboxTarget,
    "kubernetes": models.KubernetesTarget,
}


def _untag(loc: Loc) -> tuple[Loc, type[pydantic.BaseModel] | None]:
    """``loc`` without the union tags pydantic adds (``policies[0].hpa.name`` -> ``policies[0].name``), and the
    model the tag names at the end of ``loc`` (for the list of valid fields)."""
    out: list[str | int] = []
    model: type[pydantic.BaseModel] | None = None
    for index, part in enumerate(loc):
        if isinstance(part, str) and part in _TAGS and (out and (isinstance(out[-1], int) or out[-1] == "target")):
            if index == len(loc) - 2:
                model = _TAGS[part]
            continue
        out.append(part)
    return tuple(out), model


def _field_names(model: type[pydantic.BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def explain(error: Any) -> tuple[Loc, str]:
    loc, tagged = _untag(tuple(error["loc"]))
    kind = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "value_error":
        head, sep, rest = message.partition(": ")
        if sep and re.fullmatch(r"[A-Za-z\[][\w.\[\]]*", head):
            return (*loc, *_parse_dotted(head)), rest
        return loc, message
    if kind == "missing":
        return loc, "required field is missing"
    if kind == "extra_forbidden":
        parent = tagged if tagged is not None and len(loc) >= 2 else _model_at(loc[:-1])
        valid = _field_names(parent) if parent else []
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        listing = f" Valid fields here: {', '.join(valid)}." if valid else ""
        return loc, f"unknown field {short(str(loc[-1]))!r}{hint}{listing}"
    if kind == "string_too_long":
        limit = error.get("ctx", {}).get("max_length")
        got = len(error["input"]) if isinstance(error.get("input"), str) else "more"
        return loc, f"too long: {got:,} characters, at most {limit:,}; shorten it"
    if kind == "too_long":
        ctx = error.get("ctx", {})
        got = ctx.get("actual_length")
        count = f"{got:,} items" if isinstance(got, int) else "too many items"
        return loc, f"{count}, at most {ctx.get('max_length'):,}; keep the ones the drill needs or split the drill"
    return loc, f"{message} (got {describe(error.get('input'))})"


def _definition_errors(file: str, exc: pydantic.ValidationError, lines: dict[Loc, int]) -> errors.DefinitionErrors:
    found: list[errors.DefinitionError] = []
    problems = exc.errors()
    for error in problems[: limits.LIMITS.max_errors]:
        loc, message = explain(error)
        # Validator wrappers can add internal tags such as 'function-after[...]' to the loc; drop those.
        loc = tuple(p for p in loc if not (isinstance(p, str) and "[" in p))
        found.append(
            errors.DefinitionError(
                file=file, line=line_for(lines, loc), field=dotted(loc), message=redaction.redact(message)
            )
        )
    if len(problems) > len(found):
        more = len(problems) - len(found)
        found.append(
            errors.DefinitionError(file=file, field="(document)", message=f"and {more:,} more problems like these")
        )
    return errors.DefinitionErrors(found)


def _single(file: str, field: str, message: str, line: int | None = None) -> errors.DefinitionErrors:
    return errors.DefinitionErrors(
        [errors.DefinitionError(file=file, line=line, field=field, message=redaction.redact(message))]
    )


def _drill_bounds() -> reading.Bounds:
    return reading.Bounds(
        max_depth=limits.LIMITS.max_depth, max_nodes=limits.LIMITS.drill_nodes, max_aliases=limits.LIMITS.aliases
    )


def _experiment_bounds() -> reading.Bounds:
    return reading.Bounds(
        max_depth=limits.LIMITS.max_depth,
        max_nodes=limits.LIMITS.experiment_nodes,
        max_aliases=limits.LIMITS.aliases,
    )


def yaml_problem(exc: yaml.YAMLError) -> tuple[str, int | None]:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return problem, (mark.line + 1 if mark is not None else None)


def parse_drill(path: Path) -> tuple[models.Drill, dict[str, Any], dict[Loc, int]]:
    """Read and type-check a drill file; raises DefinitionErrors naming file, line and field."""
    file = str(path)
    try:
        text = reading.read_text(path, max_bytes=limits.LIMITS.drill_file_bytes)
        node, data = reading.parse_yaml(text, _drill_bounds())
    except reading.InputRefused as exc:
        raise _single(file, f"({exc.kind})", exc.message, exc.line) from None
    except yaml.YAMLError as exc:
        problem, line = yaml_problem(exc)
        raise _single(file, "(yaml)", f"not valid YAML: {problem}; check indentation and quoting", line) from None
    if not isinstance(data, dict) or node is None:
        raise _single(
            file, "(document)", "a drill file is a mapping with apiVersion, kind: Drill, metadata and spec", 1
        )
    lines = line_map(node)
    if data.get("kind") != "Drill":
        message = f"expected 'Drill', got {describe(data.get('kind'))}"
        raise _single(file, "kind", message, line_for(lines, ("kind",)))
    if data.get("apiVersion") != models.API_VERSION:
        message = f"expected {models.API_VERSION!r}, got {describe(data.get('apiVersion'))}"
        raise _single(file, "apiVersion", message, line_for(lines, ("apiVersion",)))
    try:
        drill = models.Drill.model_validate(data)
    except pydantic.ValidationError as exc:
        raise _definition_errors(file, exc, lines) from None
    return drill, data, lines


_EXPERIMENT_SUFFIXES = (".json", ".yaml", ".yml")


def _check_activities(experiment: dict[str, Any]) -> None:
    hypothesis = experiment.get("steady-state-hypothesis")
    parts = {
        "method": experiment.get("method"),
        "rollbacks": experiment.get("rollbacks"),
        "steady-state-hypothesis.probes": hypothesis.get("probes") if isinstance(hypothesis, dict) else None,
    }
    counts = {name: len(value) for name, value in parts.items() if isinstance(value, list)}
    if sum(counts.values()) > limits.LIMITS.activities:
        listed = ", ".join(f"{count:,} in {name}" for name, count in counts.items())
        raise reading.InputRefused(
            f"{sum(counts.values()):,} activities ({listed}), at most {limits.LIMITS.activities:,}; "
            "a drill injects one fault: keep the activities it needs"
        )


def read_experiment(path: Path) -> dict[str, Any]:
    """Read a Chaos Toolkit experiment (JSON or YAML, chosen by extension as ``chaos`` does) within bounds.

    The same bounded reader and parser as drill files, then a cap on its activities; raises ExperimentError
    whose message starts with ``NAME[:LINE]:``. Chaos Toolkit's own validation is ``chaostoolkit.validate_experiment``.
    """
    bounds = _experiment_bounds()
    if path.suffix not in _EXPERIMENT_SUFFIXES:
        raise errors.ExperimentError(
            f"{path.name}: only files with json, yaml or yml extensions are supported; rename it"
        )
    try:
        text = reading.read_text(path, max_bytes=limits.LIMITS.experiment_file_bytes)
        experiment = (
            reading.decode_json(text, bounds) if path.suffix == ".json" else reading.parse_yaml(text, bounds)[1]
        )
        if isinstance(experiment, dict):
            _check_activities(experiment)
        reading.check_structure(experiment, bounds)
    except reading.InputRefused as exc:
        where = f"{path.name}:{exc.line}" if exc.line is not None else path.name
        raise errors.ExperimentError(f"{where}: {exc.message}") from None
    except yaml.YAMLError as exc:
        problem, line = yaml_problem(exc)
        where = f"{path.name}:{line}" if line is not None else path.name
        raise errors.ExperimentError(f"{where}: not valid YAML: {problem}; check indentation and quoting") from None
    if not isinstance(experiment, dict):
        raise errors.ExperimentError(
            f"{path.name}: an experiment file holds a mapping (title, description, method, ...)"
        )
    return experiment


def chaos_files(drill_path: Path, options: models.ChaosRunOptions) -> tuple[tuple[Path, ...], Path | None]:
    """The drill file's ``chaos.varFiles`` and ``chaos.settings``, relative to the drill file."""
    base = drill_path.absolute().parent
    return tuple(base / f for f in options.var_files), (base / options.settings if options.settings else None)


def load_drill(path: Path | str) -> LoadedDrill:
    """Parse a drill and load and validate its experiment with Chaos Toolkit's own validation."""
    from orchestrator.adapters import chaostoolkit

    path = Path(path)
    drill, raw, lines = parse_drill(path)
    file = str(path)

    def fail(loc: Loc, message: str) -> errors.DefinitionErrors:
        return _single(file, dotted(loc), message, line_for(lines, loc))

    var_files, settings_file = chaos_files(path, drill.spec.experiment.chaos)
    for index, var_file in enumerate(var_files):
        if not var_file.is_file():
            where: Loc = ("spec", "experiment", "chaos", "varFiles", index)
            raise fail(where, f"no var file at {var_file}; the path is relative to the drill file")
    if settings_file is not None and not settings_file.is_file():
        where = ("spec", "experiment", "chaos", "settings")
        raise fail(where, f"no settings file at {settings_file}; the path is relative to the drill file")
    exp_loc: Loc = ("spec", "experiment", "path")
    try:
        exp_path = (path.parent / drill.spec.experiment.path).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise fail(exp_loc, f"cannot resolve {drill.spec.experiment.path!r}: {exc}") from None
    if not exp_path.exists():
        raise fail(exp_loc, f"no experiment at {exp_path}; the path is relative to the drill file")
    try:
        experiment = read_experiment(exp_path)
        if drill.spec.experiment.configuration:
            if not isinstance(experiment.get("configuration") or {}, dict):
                raise errors.ExperimentError(
                    f"{exp_path.name}: invalid experiment: its configuration must be a mapping"
                )
            merged = dict(experiment.get("configuration") or {})
            merged.update(drill.spec.experiment.configuration)
            experiment["configuration"] = merged
        chaostoolkit.validate_experiment(experiment)
    except errors.ExperimentError as exc:
        message = str(exc)
        if not message.startswith(exp_path.name):
            message = f"{exp_path.name}: {message}"
        raise fail(exp_loc, message) from None
    if drill.spec.mode is not models.Mode.CHAOS and not experiment.get("steady-state-hypothesis"):
        raise fail(
            exp_loc,
            f"{exp_path.name}: a {drill.spec.mode.value} drill detects mitigation from the experiment's "
            "steady-state-hypothesis; add one with at least one probe",
        )
    if drill.spec.mode is not models.Mode.CHAOS and not experiment.get("method"):
        raise fail(exp_loc, f"{exp_path.name}: the method is empty, so there is no fault to inject")
    for index, probe in enumerate(drill.spec.guardrails.abort_when):
        try:
            chaostoolkit.validate_activity(probe.activity())
        except errors.ExperimentError as exc:
            raise fail(("spec", "guardrails", "abortWhen", index), str(exc)) from None
    return LoadedDrill(path=path, drill=drill, experiment_path=exp_path, experiment=experiment, raw=raw)
