"""Options: parsing, one-line usage errors, and the precedence command line > env > ini > suite > default."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_zimage_quality import SuiteError, load_suite
from pytest_zimage_quality.options import parse_header, parse_host, resolve_settings
from pytest_zimage_quality.settings import (
    GATE_PARAMETERS,
    OPTIONS,
    Option,
    Settings,
    parse_margin,
    parse_tolerance,
)
from tests.helpers import write_small_suite

DUMP_CONFTEST = """
import json
from pathlib import Path
from pytest_zimage_quality import load_suite
from pytest_zimage_quality.session import SESSION_KEY

def pytest_collection_finish(session):
    settings = session.config.stash[SESSION_KEY].settings
    suite = load_suite(Path({suite!r}))
    gate = settings.gate_for(suite)
    Path("settings.json").write_text(json.dumps({{
        "hosts": [str(h) for h in settings.hosts],
        "tolerance": [gate.tolerance, gate.source("tolerance")],
        "margin": [gate.margin, gate.source("margin")],
        "seeds": list(settings.seeds_for(suite)),
        "device": settings.device,
        "timeout": settings.timeout,
        "report_dir": str(settings.report_dir),
    }}))
"""


def dump(
    pytester: pytest.Pytester, *args: str, ini: str = "", suite_extra: str = ""
) -> dict[str, Any]:
    suite = write_small_suite(pytester.path, name="suite.toml", suite_extra=suite_extra)
    pytester.makeconftest(DUMP_CONFTEST.format(suite=str(suite)))
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    # --collect-only: the settings are resolved, and no host is contacted.
    result = pytester.runpytest("-p", "no:randomly", "--collect-only", *args)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    data: dict[str, Any] = json.loads((pytester.path / "settings.json").read_text())
    return data


@pytest.mark.parametrize(("cli", "ini", "suite"), list(itertools.product([False, True], repeat=3)))
def test_precedence_matrix(pytester: pytest.Pytester, cli: bool, ini: bool, suite: bool) -> None:
    args = ["--zimage-tolerance=0.11"] if cli else []
    got = dump(
        pytester,
        *args,
        ini="zimage_tolerance = 0.22" if ini else "",
        suite_extra="tolerance = 0.33" if suite else "",
    )
    expected = (
        [0.11, "option"]
        if cli
        else [0.22, "option"]
        if ini
        else [0.33, "suite file"]
        if suite
        else [0.04, "default"]
    )
    assert got["tolerance"] == expected
    assert got["margin"] == [0.01, "default"]


def test_seeds_override_and_ini_values(pytester: pytest.Pytester) -> None:
    got = dump(
        pytester,
        "--zimage-seeds=5,6",
        ini="zimage_device = cpu\nzimage_timeout = 30\nzimage_report_dir = out/reports",
    )
    assert got["seeds"] == [5, 6]
    assert got["device"] == "cpu"
    assert got["timeout"] == 30.0
    assert got["report_dir"] == str(pytester.path / "out" / "reports")


def test_hosts_cli_beats_env_beats_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    ini = "zimage_host =\n    ini-host:1\n    http://other:2"
    assert dump(pytester, ini=ini)["hosts"] == ["http://ini-host:1", "http://other:2"]
    monkeypatch.setenv("ZIMAGE_HOST", "env-host:3, env-two")
    assert dump(pytester, ini=ini)["hosts"] == ["http://env-host:3", "http://env-two:8188"]
    got = dump(
        pytester, "--zimage-host=cli:4", "--zimage-host=https://secure.example/comfy", ini=ini
    )
    assert got["hosts"] == ["http://cli:4", "https://secure.example/comfy"]


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("gb10:8188", "http://gb10:8188"),
        ("gb10", "http://gb10:8188"),
        ("http://gb10:8188/", "http://gb10:8188"),
        ("https://comfy.example.com", "https://comfy.example.com"),
        ("https://comfy.example.com:8443/base/", "https://comfy.example.com:8443/base"),
        ("[::1]:8188", "http://[::1]:8188"),
        ("127.0.0.1:8188", "http://127.0.0.1:8188"),
        ("SIMULATED", "simulated"),
    ],
)
def test_parse_host(text: str, url: str) -> None:
    assert parse_host(text).url == url


@pytest.mark.parametrize("text", ["ftp://x", "gb10:port", "gb10:0", "gb10:70000", "", "a b:1"])
def test_parse_host_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_host(text)


def test_parse_header() -> None:
    assert parse_header("Authorization: Bearer a:b") == ("Authorization", "Bearer a:b")
    with pytest.raises(argparse.ArgumentTypeError):
        parse_header("no colon here")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["--zimage-tolerance=abc"],
            "argument --zimage-tolerance: 'abc' is not a CLIPScore difference",
        ),
        (["--zimage-alpha=0.9"], "argument --zimage-alpha: '0.9' is out of range"),
        (
            ["--zimage-host=ftp://x"],
            "argument --zimage-host: 'ftp://x': scheme 'ftp' is not supported",
        ),
        (["--zimage-device=gpu7"], "argument --zimage-device: 'gpu7' is not a device"),
        (["--zimage-seeds=1,x"], "argument --zimage-seeds: seed 'x' is not a whole number"),
        (
            ["--zimage-weights=maybe"],
            "argument --zimage-weights: 'maybe' is not one of: pretrained, random",
        ),
        (["--zimage-host=simulated", "--zimage-host=gb10:1"], "cannot be combined with real hosts"),
    ],
)
def test_bad_command_line_value_is_one_usage_line(
    pytester: pytest.Pytester, args: list[str], words: str
) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert words in result.stderr.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_bad_ini_value_is_one_usage_line(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nzimage_margin = lots\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "ini option zimage_margin: 'lots' is not a CLIPScore difference" in result.stderr.str()


def test_bad_env_host_is_one_usage_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZIMAGE_HOST", "gb10:notaport")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "$ZIMAGE_HOST" in result.stderr.str()


def test_help_lists_every_option_in_one_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["Z-Image quality gate:", "*--zimage-host=HOST*"])
    text = result.stdout.str()
    for option in (
        "--zimage-host",
        "--zimage-suite",
        "--zimage-configs",
        "--zimage-prompts",
        "--zimage-seeds",
        "--zimage-tolerance",
        "--zimage-device",
        "--zimage-report-dir",
        "--zimage-cache-dir",
        "--zimage-timeout",
        "--zimage-header",
        "--zimage-margin",
        "--zimage-alpha",
        "--zimage-clip-model",
        "--zimage-clip-pretrained",
        "--zimage-refresh",
        "--zimage-queue-depth",
    ):
        assert option in text
    for ini in ("zimage_host", "zimage_tolerance", "zimage_report_dir", "zimage_timeout"):
        assert ini in text


@pytest.mark.slow
def test_header_values_are_never_printed(pytester: pytest.Pytester, small_suite: Path) -> None:
    result = pytester.runpytest_subprocess(
        "-v",
        "--zimage-host=127.0.0.1:9",
        "--zimage-header=Authorization: Bearer TOPSECRET",
        "--zimage-timeout=2",
        str(small_suite),
        "-k",
        "cat-bf16-s1",
    )
    text = result.stdout.str() + result.stderr.str()
    assert "Authorization" in text
    assert "TOPSECRET" not in text


# -- the option table: every row is a flag, an ini key and a Settings default ------------------

#: Two values of each option (command line, ini), both different from the default and from
#: each other; switches take no command-line value. A new row needs a line here.
SAMPLES: dict[str, tuple[str | None, str]] = {
    "hosts": ("cli-host:1", "ini-host:2"),
    "headers": ("X-Cli: 1", "X-Ini: 2"),
    "suite_path": ("cli.toml", "ini.toml"),
    "configs": ("fp8,nvfp4", "bf16"),
    "prompts": ("cat", "ink sign"),
    "seeds": ("1,2", "3"),
    "tolerance": ("0.11", "0.22"),
    "margin": ("0.03", "0.02"),
    "alpha": ("0.01", "0.025"),
    "clip_floor": ("0.1", "0.3"),
    "lpips_close": ("0.5", "0.6"),
    "per_prompt_gate": (None, "true"),
    "advisory": (None, "true"),
    "band": ("scaled", "fixed"),
    "band_sd": ("0.03", "0.015"),
    "prior": ("cli-summary.json", "ini-summary.json"),
    "plan": (None, "yes"),
    "xfail_strict": (None, "true"),
    "device": ("cpu", "cuda:1"),
    "weights": ("pretrained", "random"),
    "precision": ("tf32", "bf16"),
    "clip_model": ("RN50", "ViT-L-14"),
    "clip_pretrained": ("openai", "weights.bin"),
    "lpips_net": ("alex", "vgg"),
    "lpips_weights": ("cli.pth", "ini.pth"),
    "score_memory": ("256", "2048"),
    "report_dir": ("cli-out", "ini-out"),
    "cache_dir": ("cli-cache", "ini-cache"),
    "refresh": (None, "yes"),
    "revision": ("r1", "r2"),
    "timeout": ("30", "45.5"),
    "queue_depth": ("3", "4"),
    "baseline": ("cli-base", "ini-base"),
    "baseline_any_lane": (None, "true"),
    "history": ("cli-hist", "ini-hist"),
    "recheck": ("4", "3"),
    "vram_interval": ("0.5", "0"),
    "infra_exit_status": (None, "true"),
    "gate_metric": ("text_accuracy", "brightness"),
    "markdown": ("cli.md", "ini.md"),
    "step_summary": ("yes", "no"),
    "hosts_file": ("cli-hosts.txt", "ini-hosts.txt"),
    "comfyui": ("/opt/ComfyUI/main.py", "fake"),
    "gpus": ("0,1", "all"),
    "cpu_servers": ("2", "3"),
    "comfyui_args": ("--lowvram", "--disable-metadata --cpu"),
    "launch_timeout": ("60", "90.5"),
    "ray": ("auto", "ray://head:10001"),
    "ray_servers": ("4", "8"),
    "pin_pairs": ("always", "never"),
}


def _expected(opt: Option, text: str, base: Path) -> object:
    if opt.kind == "list":
        return (opt.parse(text),)
    if opt.kind == "path":
        return (base / text).absolute()
    return opt.parse(text)


def test_every_row_has_a_settings_field_with_its_default() -> None:
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    assert set(fields) == {*OPTIONS, "rootpath"}
    assert set(SAMPLES) == set(OPTIONS)
    for name, opt in OPTIONS.items():
        assert fields[name].default == opt.settings_default, name
        assert opt.full_help.rstrip(".").split("Default: ")[-1], name


def test_every_row_is_registered_on_the_command_line_and_as_ini(
    pytester: pytest.Pytester,
) -> None:
    config = pytester.parseconfig()
    help_text = pytester.runpytest("--help").stdout.str()
    for opt in OPTIONS.values():
        assert config.getini(opt.ini) == ([] if opt.kind == "list" else ""), opt.ini
        assert opt.ini in help_text
        if opt.flag is not None:
            assert config.getoption(opt.dest) is None, opt.flag
            assert opt.flag in help_text
    assert resolve_settings(config) == Settings(rootpath=config.rootpath)


@pytest.mark.parametrize("name", list(OPTIONS))
def test_each_row_reads_ini_and_the_command_line_beats_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.delenv("ZIMAGE_HOST", raising=False)
    opt = OPTIONS[name]
    cli, ini = SAMPLES[name]
    pytester.makeini(f"[pytest]\n{opt.ini} = {ini}\n")
    from_ini = getattr(resolve_settings(pytester.parseconfig()), name)
    assert from_ini == _expected(opt, ini, pytester.path)
    assert from_ini != opt.settings_default
    if opt.flag is None:
        return
    if opt.kind == "switch":
        pytester.makeini(f"[pytest]\n{opt.ini} = false\n")
        assert getattr(resolve_settings(pytester.parseconfig()), name) is False
        assert getattr(resolve_settings(pytester.parseconfig(opt.flag)), name) is True
        return
    assert cli is not None
    from_cli = getattr(resolve_settings(pytester.parseconfig(f"{opt.flag}={cli}")), name)
    assert from_cli == _expected(opt, cli, pytester.path)
    assert from_cli != from_ini


def test_xfail_strict_falls_back_to_pytests_own_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nxfail_strict = true\n")
    assert resolve_settings(pytester.parseconfig()).xfail_strict is True
    pytester.makeini("[pytest]\nxfail_strict = true\nzimage_xfail_strict = false\n")
    assert resolve_settings(pytester.parseconfig()).xfail_strict is False


def test_tolerance_and_margin_have_their_own_parsers() -> None:
    assert parse_tolerance is OPTIONS["tolerance"].parse
    assert parse_margin is OPTIONS["margin"].parse
    assert parse_margin("0.02") == 0.02
    with pytest.raises(argparse.ArgumentTypeError, match="out of range"):
        parse_margin("3")


@pytest.mark.parametrize("name", GATE_PARAMETERS)
def test_suite_file_gate_parameters_use_the_options_ranges(tmp_path: Path, name: str) -> None:
    bounds = OPTIONS[name].bounds
    assert bounds is not None
    too_high = bounds.high + 1
    suite = write_small_suite(tmp_path, suite_extra=f"{name} = {too_high}")
    with pytest.raises(SuiteError, match=rf"\[suite\.{name}\].*out of range \[{bounds.low}, "):
        load_suite(suite)
    inside = write_small_suite(tmp_path, suite_extra=f"{name} = {bounds.high}")
    assert getattr(load_suite(inside), name) == bounds.high


def test_scorer_defaults_are_the_tables() -> None:
    from pytest_zimage_quality.scorers import _defaults

    settings = Settings()
    got = {
        "clip_model": _defaults.DEFAULT_CLIP_MODEL,
        "clip_pretrained": _defaults.DEFAULT_CLIP_PRETRAINED,
        "lpips_net": _defaults.DEFAULT_LPIPS_NET,
        "precision": _defaults.DEFAULT_PRECISION,
        "device": _defaults.DEFAULT_DEVICE,
    }
    assert got == {name: getattr(settings, name) for name in got}
    assert OPTIONS["precision"].choices == _defaults.PRECISIONS


@pytest.mark.parametrize(
    "given", [["--zimage-inconclusive=pass"], ["--zimage-inconclusive", "fail"]]
)
def test_removed_inconclusive_option_names_its_replacement(
    pytester: pytest.Pytester, given: list[str]
) -> None:
    with pytest.raises(pytest.UsageError, match="--zimage-advisory"):
        resolve_settings(pytester.parseconfig(*given))


def test_removed_inconclusive_ini_key_names_its_replacement(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nzimage_inconclusive = pass\n")
    with pytest.raises(pytest.UsageError, match="zimage_advisory"):
        resolve_settings(pytester.parseconfig())
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*was removed*--zimage-advisory*"])
    assert "--zimage-inconclusive" not in pytester.runpytest("--help").stdout.str()
