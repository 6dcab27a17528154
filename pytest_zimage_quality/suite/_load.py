"""``load_suite``: read a suite file (UTF-8 TOML) and its ``[suite]`` table — the
workflow, where prompt and seed go, the reference, gate parameters, metrics, prior, output
node — into a frozen ``Suite``, with the sections read by ``SectionReader``."""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import SuiteError
from ..metric_gates import parse_metric_gates
from ..settings import GATE_PARAMETERS, OPTIONS
from ..workflow import Workflow, canonical_json

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from ._model import Suite
from ._reader import kind
from ._sections import SectionReader

__all__ = ["load_suite"]

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
_PRIOR_KEYS = {"sd_between", "sd_within"}
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


class _Parser(SectionReader):
    """The suite file's sections, read into a ``Suite``."""

    def __init__(self, path: Path, data: dict[str, Any], raw: bytes) -> None:
        super().__init__(path, data)
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
