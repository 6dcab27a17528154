"""The list sections of a suite file: ``[configs.<key>]`` (input overrides),
``[[prompts]]`` (key, text, tags, expected text, stage), the seeds, and ``[[expected_fail]]``;
each entry checked, with a ``SuiteError`` naming its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..settings import MAX_SEED
from ..text_accuracy import expected_text
from ..workflow import InputRef, Workflow
from ._model import ConfigSpec, ExpectedFail, Prompt
from ._reader import TableReader, kind

__all__ = ["MAX_STAGES", "SectionReader"]

_CONFIG_KEYS = {"label", "description", "overrides"}
_PROMPT_KEYS = {"key", "text", "tags", "expected_text", "stage"}
#: The most stages a suite may declare (each is an interim look of the sequential design).
MAX_STAGES = 10
_XFAIL_KEYS = {"prompt", "config", "reason", "strict"}


class SectionReader(TableReader):
    """Reads the list sections of the parsed TOML ``data`` of the suite file at ``path``."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        super().__init__(path)
        self.data = data

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
