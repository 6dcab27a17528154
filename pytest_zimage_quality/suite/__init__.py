"""Read and validate a suite file into frozen ``Suite`` / ``Prompt`` / ``ConfigSpec`` / ``Case``.

A suite is one TOML file (format: docs/suite-format.md): the workflow template, where the
prompt text and the seed go, the reference config, the configs as input overrides, the
prompts, the seeds, optional gate parameters and expected-fail declarations. Every problem is
a ``SuiteError`` naming the file, the key and the fix; nothing here imports pytest or torch.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import SuiteError
from ..metric_gates import parse_metric_gates
from ..settings import GATE_PARAMETERS, MAX_SEED, OPTIONS
from ..text_accuracy import expected_text
from ..workflow import InputRef, Workflow, canonical_json

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from ._model import Case, ConfigSpec, ExpectedFail, Prompt, Suite
from ._reader import TableReader, kind

__all__ = [
    "MAX_SEED",
    "Case",
    "ConfigSpec",
    "ExpectedFail",
    "Prompt",
    "Suite",
    "load_suite",
]

_SUITE_KEYS = {
    "name": "a short name for the suite (default: the file name)",
    "description": "free text",
    "workflow": "path of the API-format workflow JSON, relative to this file",
    "reference": "key of the reference config (the baseline, e.g. BF16)",
    "seeds": "list of integer seeds",
    "prompt_input": "{ node = '<id>', input = '<name>' } where the prompt text goes",
    "seed_input": "{ node = '<id>', input = '<name>' } where the seed goes",
    "output_node": "id of the SaveImage node to read (default: the only one)",
    "tolerance": "per-case CLIPScore tolerance against the reference",
    "margin": "non-inferiority margin δ of the per-config gate",
    "alpha": "one-sided level α of the per-config gate",
    "clip_floor": "lowest CLIPScore a reference image may have",
    "revision": "free text folded into the image cache key",
    "text_from_quotes": "true: a prompt's quoted text is the text its image should show",
    "gate_metric": "the metric the per-config gate runs on (default 'clipscore'; docs/scorers.md)",
    "distance_metric": "the reference-based metric of the two-axis reading (default 'lpips')",
    "distance_close": "its closeness threshold (default: the scorer's close_below/close_above)",
    "prior": "{ sd_between = 0.005, sd_within = 0.013 }: the paired CLIPScore spreads that plan power",
}
_CONFIG_KEYS = {"label", "description", "overrides"}
_PROMPT_KEYS = {"key", "text", "tags", "expected_text", "stage"}
_PRIOR_KEYS = {"sd_between", "sd_within"}
#: The most stages a suite may declare (each is an interim look of the sequential design).
MAX_STAGES = 10
_XFAIL_KEYS = {"prompt", "config", "reason", "strict"}
_TOP_KEYS = {"suite", "configs", "prompts", "expected_fail", "gate"}


# ---------------------------------------------------------------------------------------
# loading


def load_suite(path: Path) -> Suite:
    """Read and validate the suite file at ``path``."""
    path = Path(path)
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise SuiteError(
            f"cannot read the suite file: {exc.strerror or exc}",
            path=str(path),
            hint="check the path given to --zimage-suite or the zimage_suite ini key",
        ) from exc
    try:
        data = tomllib.loads(raw_bytes.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SuiteError(
            "the suite file is not UTF-8 text", path=str(path), hint="save it as UTF-8"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(
            f"invalid TOML: {exc}",
            path=str(path),
            hint="fix the syntax at that line; docs/suite-format.md has a complete example",
        ) from exc
    except RecursionError:
        raise SuiteError(
            "the suite file nests arrays or tables too deeply to read",
            path=str(path),
            hint="a suite file is a few levels deep; docs/suite-format.md has a complete example",
        ) from None
    return _Parser(path, data, raw_bytes).parse()


class _Parser(TableReader):
    """The suite file's sections, read into a ``Suite``."""

    def __init__(self, path: Path, data: dict[str, Any], raw: bytes) -> None:
        super().__init__(path)
        self.data = data
        self.raw = raw

    # -- the file -------------------------------------------------------------------------
    def parse(self) -> Suite:
        self.no_unknown(self.data, _TOP_KEYS, "")
        hint_suite = "add a [suite] table; docs/suite-format.md has a complete example"
        suite_t = self.table(self.require(self.data, "suite", "suite", hint_suite), "suite")
        self.no_unknown(suite_t, _SUITE_KEYS, "suite")

        workflow_rel = self.string(
            self.require(suite_t, "workflow", "suite", "add workflow = 'my_workflow_api.json'"),
            "suite.workflow",
        )
        workflow_path = (self.path.parent / workflow_rel).resolve()
        if not workflow_path.is_file():
            raise self.error(
                "suite.workflow",
                f"workflow file {workflow_rel!r} not found (looked for {workflow_path})",
                "the path is relative to the suite file; export the graph with 'Export (API)'",
            )
        workflow = Workflow.load(workflow_path)

        text_input = self.input_ref(
            self.require(
                suite_t,
                "prompt_input",
                "suite",
                "add prompt_input = { node = '27', input = 'text' }",
            ),
            "suite.prompt_input",
            workflow,
        )
        seed_input = self.input_ref(
            self.require(
                suite_t, "seed_input", "suite", "add seed_input = { node = '3', input = 'seed' }"
            ),
            "suite.seed_input",
            workflow,
        )
        output_node = self.output_node(suite_t, workflow)
        configs = self.configs(workflow)
        reference = self.string(
            self.require(
                suite_t, "reference", "suite", "add reference = '<config key>', e.g. 'bf16'"
            ),
            "suite.reference",
        )
        config_keys = [c.key for c in configs]
        if reference not in config_keys:
            raise self.error(
                "suite.reference",
                f"reference config {reference!r} is not one of the configs ({', '.join(config_keys)})",
                "set reference to the key of a [configs.<key>] table",
            )
        from_quotes = suite_t.get("text_from_quotes", False)
        if not isinstance(from_quotes, bool):
            raise self.error(
                "suite.text_from_quotes",
                f"expected true or false, got {kind(from_quotes)}",
                "write text_from_quotes = true",
            )
        prompts = self.prompts(from_quotes=from_quotes)
        seeds = self.seeds(self.require(suite_t, "seeds", "suite", "add seeds = [42, 7777, 12345]"))
        expected_fail = self.expected_fail(config_keys, [p.key for p in prompts])

        gate: dict[str, float | None] = {}
        for param in GATE_PARAMETERS:  # the options' own ranges
            bounds = OPTIONS[param].bounds
            assert bounds is not None
            gate[param] = (
                self.number(suite_t[param], f"suite.{param}", low=bounds.low, high=bounds.high)
                if param in suite_t
                else None
            )

        prior = self.prior(suite_t["prior"]) if "prior" in suite_t else None
        gate_metric = self.gate_metric(suite_t)
        name = self.string(suite_t.get("name", self.path.stem), "suite.name")
        digest = hashlib.sha256(self.raw)
        digest.update(canonical_json(workflow.graph).encode("utf-8"))
        return Suite(
            name=name,
            path=self.path,
            workflow=workflow,
            text_input=text_input,
            seed_input=seed_input,
            output_node=output_node,
            reference=reference,
            configs=tuple(configs),
            prompts=tuple(prompts),
            seeds=seeds,
            expected_fail=tuple(expected_fail),
            description=self.string(
                suite_t.get("description", ""), "suite.description", allow_empty=True
            ),
            **gate,
            revision=self.string(suite_t.get("revision", ""), "suite.revision", allow_empty=True),
            sha256=digest.hexdigest(),
            gate_metric=gate_metric,
            prior=prior,
            metric_gates=parse_metric_gates(
                self.data["gate"],
                prompt_keys=[p.key for p in prompts],
                gate_metric=gate_metric,
                error=self.error,
            )
            if "gate" in self.data
            else (),
            distance_metric=self.metric_name(suite_t, "distance_metric", "lpips"),
            distance_close=self.number(
                suite_t["distance_close"], "suite.distance_close", low=-1e9, high=1e9
            )
            if "distance_close" in suite_t
            else None,
        )

    def metric_name(self, suite_t: Mapping[str, Any], key: str, default: str) -> str:
        name = self.string(suite_t.get(key, default), f"suite.{key}")
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name):
            raise self.error(
                f"suite.{key}",
                f"{name!r} is not a metric name",
                "name a metric of the image against its reference: lpips, clip_image, psnr, "
                "ssim, or a registered scorer's",
            )
        return name

    def gate_metric(self, suite_t: Mapping[str, Any]) -> str:
        name = self.string(suite_t.get("gate_metric", "clipscore"), "suite.gate_metric")
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name):
            raise self.error(
                "suite.gate_metric",
                f"{name!r} is not a metric name",
                "name a metric of the run: clipscore, text_accuracy, or a registered scorer's",
            )
        return name

    def prior(self, value: object) -> tuple[float, float]:
        """[suite.prior]: the SDs of the paired difference that plan the power (docs/gate.md)."""
        hint = "write [suite.prior] with sd_between = 0.005 and sd_within = 0.013"
        table = self.table(value, "suite.prior")
        self.no_unknown(table, _PRIOR_KEYS, "suite.prior")
        between = self.number(
            self.require(table, "sd_between", "suite.prior", hint),
            "suite.prior.sd_between",
            low=0.0,
            high=1.0,
        )
        within = self.number(
            self.require(table, "sd_within", "suite.prior", hint),
            "suite.prior.sd_within",
            low=0.0,
            high=1.0,
        )
        if between == 0 and within == 0:
            raise self.error(
                "suite.prior",
                "a prior with no spread at all would promise power 1 from any data",
                "give sd_between or sd_within a value above 0 (the study's: 0.005 and 0.013)",
            )
        return between, within

    def output_node(self, suite_t: Mapping[str, Any], workflow: Workflow) -> str:
        outputs = workflow.output_nodes()
        if "output_node" in suite_t:
            value = suite_t["output_node"]
            node = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
            node = self.string(node, "suite.output_node")
            if node not in outputs:
                raise self.error(
                    "suite.output_node",
                    f"node {node!r} is not a SaveImage/PreviewImage node of the workflow "
                    f"(those are: {', '.join(outputs) or 'none'})",
                    "name the node that saves the image",
                )
            return node
        saves = [n for n in outputs if workflow.class_of(n) == "SaveImage"]
        if len(saves) == 1:
            return saves[0]
        if not saves:
            raise self.error(
                "suite.workflow",
                "the workflow has no SaveImage node, so no image can be fetched",
                "add a SaveImage node to the graph and export it again",
            )
        raise self.error(
            "suite.output_node",
            f"the workflow has {len(saves)} SaveImage nodes ({', '.join(saves)})",
            "set output_node = '<id>' in [suite] to pick the one to score",
        )

    def configs(self, workflow: Workflow) -> list[ConfigSpec]:
        hint = "add [configs.<key>] tables, e.g. [configs.bf16] with overrides"
        table = self.table(self.require(self.data, "configs", "configs", hint), "configs")
        if not table:
            raise self.error("configs", "no configs defined", hint)
        configs = []
        labels: dict[str, str] = {}
        for key, body in table.items():
            where = f"configs.{key}"
            self.ident(key, where, "config")
            body = self.table(body, where)
            self.no_unknown(body, _CONFIG_KEYS, where)
            label = self.string(body.get("label", key), f"{where}.label")
            if label in labels:
                raise self.error(
                    f"{where}.label",
                    f"label {label!r} is used by config {labels[label]!r} too",
                    "give each config its own label",
                )
            labels[label] = key
            overrides = []
            over_t = self.table(body.get("overrides", {}), f"{where}.overrides")
            for node, inputs in over_t.items():
                inputs_t = self.table(inputs, f"{where}.overrides.{node}")
                for name, value in inputs_t.items():
                    ref = InputRef(str(node), str(name))
                    okey = f'{where}.overrides."{node}".{name}'
                    workflow.check_input(ref, key=okey, suite_path=self.where)
                    if isinstance(value, dict | list):
                        raise self.error(
                            okey,
                            f"override value must be a string, number or boolean, got {kind(value)}",
                            "override literal inputs only (file names, numbers, text)",
                        )
                    overrides.append((ref, value))
            configs.append(
                ConfigSpec(
                    key=key,
                    label=label,
                    overrides=tuple(sorted(overrides, key=lambda item: item[0])),
                    description=self.string(
                        body.get("description", ""), f"{where}.description", allow_empty=True
                    ),
                )
            )
        return configs

    def prompts(self, *, from_quotes: bool = False) -> list[Prompt]:
        hint = "add [[prompts]] entries with key = '...' and text = '...'"
        items = self.require(self.data, "prompts", "prompts", hint)
        if not isinstance(items, list) or not items:
            raise self.error("prompts", "expected a non-empty array of [[prompts]] tables", hint)
        prompts: list[Prompt] = []
        seen: dict[str, int] = {}
        for index, body in enumerate(items):
            where = f"prompts[{index}]"
            body = self.table(body, where)
            self.no_unknown(body, _PROMPT_KEYS, where)
            key = self.ident(
                self.require(body, "key", where, "add key = 'photo_woman'"),
                f"{where}.key",
                "prompt",
            )
            if key in seen:
                raise self.error(
                    f"{where}.key",
                    f"duplicate prompt key {key!r} (also prompts[{seen[key]}])",
                    "give every prompt its own key: keys name the tests and the report rows",
                )
            seen[key] = index
            text = self.string(
                self.require(body, "text", where, "add text = '...'"), f"{where}.text"
            )
            tags = body.get("tags", [])
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise self.error(
                    f"{where}.tags", "expected a list of strings", "write tags = ['photo']"
                )
            declared = body.get("expected_text")
            if declared is not None:
                declared = self.string(declared, f"{where}.expected_text")
            try:
                expected = expected_text(text, declared=declared, from_quotes=from_quotes)
            except ValueError as exc:
                raise self.error(
                    f"{where}.expected_text", str(exc), "write the text the image should show"
                ) from None
            stage = body.get("stage", 1)
            if (
                isinstance(stage, bool)
                or not isinstance(stage, int)
                or not 1 <= stage <= MAX_STAGES
            ):
                raise self.error(
                    f"{where}.stage",
                    f"expected a whole number from 1 to {MAX_STAGES}, got {kind(stage)}",
                    "write stage = 2 (prompts without a stage are stage 1)",
                )
            prompts.append(
                Prompt(key=key, text=text, tags=tuple(tags), expected_text=expected, stage=stage)
            )
        stages = sorted({p.stage for p in prompts})
        if stages != list(range(1, len(stages) + 1)):
            missing = min(set(range(1, stages[-1] + 1)) - set(stages))
            raise self.error(
                "prompts",
                f"stage {missing} has no prompt (the prompts declare stages {stages})",
                "number the stages 1, 2, 3, ... without gaps",
            )
        return prompts

    def seeds(self, value: object) -> tuple[int, ...]:
        if not isinstance(value, list) or not value:
            raise self.error(
                "suite.seeds",
                f"expected a non-empty list of integers, got {kind(value)}",
                "write seeds = [42, 7777, 12345]",
            )
        seeds: list[int] = []
        for seed in value:
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
                raise self.error(
                    "suite.seeds",
                    f"seed {seed!r} is not an integer in [0, 2**64-1]",
                    "use whole non-negative numbers",
                )
            if seed in seeds:
                raise self.error(
                    "suite.seeds", f"seed {seed} is listed twice", "list each seed once"
                )
            seeds.append(seed)
        return tuple(seeds)

    def expected_fail(self, configs: list[str], prompts: list[str]) -> list[ExpectedFail]:
        items = self.data.get("expected_fail", [])
        if not isinstance(items, list):
            raise self.error(
                "expected_fail",
                "expected an array of [[expected_fail]] tables",
                "write [[expected_fail]] with prompt, optional config, and reason",
            )
        result: list[ExpectedFail] = []
        seen: set[tuple[str, str | None]] = set()
        for index, body in enumerate(items):
            where = f"expected_fail[{index}]"
            body = self.table(body, where)
            self.no_unknown(body, _XFAIL_KEYS, where)
            prompt = self.string(
                self.require(body, "prompt", where, "name the prompt key"), f"{where}.prompt"
            )
            if prompt not in prompts:
                raise self.error(
                    f"{where}.prompt",
                    f"unknown prompt {prompt!r} (prompts: {', '.join(prompts)})",
                    "use a key of a [[prompts]] entry",
                )
            config = body.get("config")
            if config is not None:
                config = self.string(config, f"{where}.config")
                if config not in configs:
                    raise self.error(
                        f"{where}.config",
                        f"unknown config {config!r} (configs: {', '.join(configs)})",
                        "use a key of a [configs.<key>] table, or leave config out for every config",
                    )
            reason = self.string(
                self.require(body, "reason", where, "say why it is expected to fail"),
                f"{where}.reason",
            )
            strict = body.get("strict")
            if strict is not None and not isinstance(strict, bool):
                raise self.error(
                    f"{where}.strict",
                    f"expected true or false, got {kind(strict)}",
                    "write strict = true",
                )
            if (prompt, config) in seen:
                raise self.error(
                    where,
                    f"prompt {prompt!r} / config {config!r} is declared twice",
                    "keep one declaration per prompt or (prompt, config) pair",
                )
            seen.add((prompt, config))
            result.append(ExpectedFail(prompt=prompt, config=config, reason=reason, strict=strict))
        return result
