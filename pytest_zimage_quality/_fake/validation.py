"""POST /prompt validation, ported from ComfyUI's ``execution.validate_prompt``.

A client learns what went wrong only from the 400 body, so the fake must produce the same
error types, messages, ``details`` and ``extra_info`` as the real server: only nodes reachable
from an output node are checked, a failing upstream node is reported once (its dependants are
not listed), and 200 comes back with a non-empty ``node_errors`` when at least one output is
good. Like the real server, validation converts literal inputs in place (``"8"`` -> ``8`` for
an INT input, ``{"__value__": [...]}`` unwrapped), and the converted graph is what gets queued.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

from .compat import VersionProfile
from .nodes import NodeCatalog

__all__ = ["ValidationOutcome", "validate_prompt"]

_Result = tuple[bool, list[dict[str, Any]], str]


@dataclass
class ValidationOutcome:
    """What ``validate_prompt`` decided: queue ``outputs``, or answer 400 with ``error``."""

    ok: bool
    error: dict[str, Any] | None
    outputs: list[str]
    node_errors: dict[str, Any] = field(default_factory=dict)


def _full_type_name(exc: BaseException) -> str:
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _format_tb(exc: BaseException) -> list[str]:
    # The real server sends traceback.format_tb() lines of its own files; ours are honest.
    return traceback.format_tb(exc.__traceback__)


def _input_info(
    class_inputs: dict[str, Any], name: str
) -> tuple[Any, str | None, dict[str, Any] | None]:
    for category in ("required", "optional", "hidden"):
        section = class_inputs.get(category, {})
        if name in section:
            spec = section[name]
            if isinstance(spec, str):  # hidden inputs are plain type names
                return spec, category, {}
            extra = spec[1] if len(spec) > 1 else {}
            return spec[0], category, extra
    return None, None, None


def _types_match(received: Any, expected: Any) -> bool:
    if received == expected or received == "*" or expected == "*":
        return True
    if isinstance(received, list) and expected == "COMBO":
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    got = {t.strip() for t in received.split(",")}
    want = {t.strip() for t in expected.split(",")}
    return "*" in got or "*" in want or bool(got & want)


class _Validator:
    def __init__(self, prompt: dict[str, Any], catalog: NodeCatalog) -> None:
        self.prompt = prompt
        self.catalog = catalog
        self.validated: dict[str, _Result] = {}
        self.visiting: set[str] = set()

    def validate_inputs(self, unique_id: str) -> _Result:
        if unique_id in self.validated:
            return self.validated[unique_id]
        if unique_id in self.visiting:
            raise RecursionError("maximum recursion depth exceeded")
        self.visiting.add(unique_id)
        try:
            return self._validate_inputs(unique_id)
        finally:
            self.visiting.discard(unique_id)

    def _validate_inputs(self, unique_id: str) -> _Result:
        node = self.prompt[unique_id]
        inputs = node["inputs"]
        class_type = node["class_type"]
        class_inputs = self.catalog.input_types(class_type)
        errors: list[dict[str, Any]] = []
        valid = True

        order = [*class_inputs.get("required", {}), *class_inputs.get("optional", {})]
        for x in order:
            input_type, input_category, extra_info = _input_info(class_inputs, x)
            assert extra_info is not None
            if x not in inputs:
                if input_category == "required":
                    errors.append(
                        {
                            "type": "required_input_missing",
                            "message": "Required input is missing",
                            "details": f"{x}",
                            "extra_info": {"input_name": x},
                        }
                    )
                continue

            val = inputs[x]
            info = [input_type, extra_info]
            if isinstance(val, list):
                if len(val) != 2:
                    errors.append(
                        {
                            "type": "bad_linked_input",
                            "message": "Bad linked input, must be a length-2 list of "
                            "[node_id, slot_index]",
                            "details": f"{x}",
                            "extra_info": {
                                "input_name": x,
                                "input_config": info,
                                "received_value": val,
                            },
                        }
                    )
                    continue
                o_id = val[0]
                o_class_type = self.prompt[o_id]["class_type"]
                received_type = self.catalog.return_types(o_class_type)[val[1]]
                if not _types_match(received_type, input_type):
                    errors.append(
                        {
                            "type": "return_type_mismatch",
                            "message": "Return type mismatch between linked nodes",
                            "details": f"{x}, received_type({received_type}) mismatch "
                            f"input_type({input_type})",
                            "extra_info": {
                                "input_name": x,
                                "input_config": info,
                                "received_type": received_type,
                                "linked_node": val,
                            },
                        }
                    )
                    continue
                try:
                    r = self.validate_inputs(o_id)
                    if r[0] is False:
                        valid = False
                        continue
                except Exception as ex:
                    valid = False
                    reasons = [
                        {
                            "type": "exception_during_inner_validation",
                            "message": "Exception when validating inner node",
                            "details": str(ex),
                            "extra_info": {
                                "input_name": x,
                                "input_config": info,
                                "exception_message": str(ex),
                                "exception_type": _full_type_name(ex),
                                "traceback": _format_tb(ex),
                                "linked_node": val,
                            },
                        }
                    ]
                    self.validated[o_id] = (False, reasons, o_id)
                    continue
            else:
                try:
                    if isinstance(val, dict) and "__value__" in val:
                        val = val["__value__"]
                        inputs[x] = val
                    if input_type == "INT":
                        val = int(val)
                        inputs[x] = val
                    if input_type == "FLOAT":
                        val = float(val)
                        inputs[x] = val
                    if input_type == "STRING":
                        val = str(val)
                        inputs[x] = val
                    if input_type == "BOOLEAN":
                        val = bool(val)
                        inputs[x] = val
                except Exception as ex:
                    errors.append(
                        {
                            "type": "invalid_input_type",
                            "message": f"Failed to convert an input value to a {input_type} value",
                            "details": f"{x}, {val}, {ex}",
                            "extra_info": {
                                "input_name": x,
                                "input_config": info,
                                "received_value": val,
                                "exception_message": str(ex),
                            },
                        }
                    )
                    continue

                if "min" in extra_info and val < extra_info["min"]:
                    errors.append(
                        {
                            "type": "value_smaller_than_min",
                            "message": f"Value {val} smaller than min of {extra_info['min']}",
                            "details": f"{x}",
                            "extra_info": {
                                "input_name": x,
                                "input_config": info,
                                "received_value": val,
                            },
                        }
                    )
                    continue
                if "max" in extra_info and val > extra_info["max"]:
                    errors.append(
                        {
                            "type": "value_bigger_than_max",
                            "message": f"Value {val} bigger than max of {extra_info['max']}",
                            "details": f"{x}",
                            "extra_info": {
                                "input_name": x,
                                "input_config": info,
                                "received_value": val,
                            },
                        }
                    )
                    continue
                if isinstance(input_type, list) or input_type == "COMBO":
                    options = (
                        input_type
                        if isinstance(input_type, list)
                        else extra_info.get("options", [])
                    )
                    if val not in options:
                        input_config: list[Any] | None = info
                        if len(options) > 20:
                            list_info = f"(list of length {len(options)})"
                            input_config = None
                        else:
                            list_info = str(options)
                        errors.append(
                            {
                                "type": "value_not_in_list",
                                "message": "Value not in list",
                                "details": f"{x}: '{val}' not in {list_info}",
                                "extra_info": {
                                    "input_name": x,
                                    "input_config": input_config,
                                    "received_value": val,
                                },
                            }
                        )
                        continue

        result: _Result = (
            (False, errors, unique_id) if errors or not valid else (True, [], unique_id)
        )
        self.validated[unique_id] = result
        return result


def validate_prompt(
    prompt: dict[str, Any],
    catalog: NodeCatalog,
    profile: VersionProfile,
    partial_execution_targets: list[str] | None = None,
) -> ValidationOutcome:
    """Validate ``prompt`` (mutated in place, like the real server) and pick its outputs.

    Raises ``TypeError``/``AttributeError`` for bodies so malformed that the real server
    crashes on them too (it then answers 500).
    """
    outputs: list[str] = []
    for x in prompt:
        node = prompt[x]
        if "class_type" not in node:
            return ValidationOutcome(False, profile.missing_class_type_error(x, node), [], {})
        class_type = node["class_type"]
        if not catalog.has(class_type):
            return ValidationOutcome(
                False, profile.unknown_class_error(x, node, class_type), [], {}
            )
        if catalog.is_output(class_type) and (
            partial_execution_targets is None or x in partial_execution_targets
        ):
            outputs.append(x)

    if not outputs:
        error = {
            "type": "prompt_no_outputs",
            "message": "Prompt has no outputs",
            "details": "",
            "extra_info": {},
        }
        return ValidationOutcome(False, error, [], {})

    validator = _Validator(prompt, catalog)
    good: list[str] = []
    failed: list[tuple[str, list[dict[str, Any]]]] = []
    node_errors: dict[str, Any] = {}
    for o in outputs:
        try:
            valid, reasons, _ = validator.validate_inputs(o)
        except Exception as ex:
            valid = False
            reasons = [
                {
                    "type": "exception_during_validation",
                    "message": "Exception when validating node",
                    "details": str(ex),
                    "extra_info": {
                        "exception_type": _full_type_name(ex),
                        "traceback": _format_tb(ex),
                    },
                }
            ]
            validator.validated[o] = (False, reasons, o)
        if valid:
            good.append(o)
            continue
        failed.append((o, reasons))
        for node_id, (node_valid, node_reasons, _) in validator.validated.items():
            if node_valid or not node_reasons:
                continue
            if node_id not in node_errors:
                node_errors[node_id] = {
                    "errors": node_reasons,
                    "dependent_outputs": [],
                    "class_type": prompt[node_id]["class_type"],
                }
            node_errors[node_id]["dependent_outputs"].append(o)

    if not good:
        details = "\n".join(
            f"{error['message']}: {error['details']}" for _, errors in failed for error in errors
        )
        error = {
            "type": "prompt_outputs_failed_validation",
            "message": "Prompt outputs failed validation",
            "details": details,
            "extra_info": {},
        }
        return ValidationOutcome(False, error, [], node_errors)
    return ValidationOutcome(True, None, good, node_errors)
