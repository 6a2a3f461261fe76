"""Broken input never crashes the generator, and never half-succeeds.

Every file of the corpus in tests/fuzz/ (see tests/fuzz/make_corpus.py: truncated
examples, broken graphs, bad bytes, odd ``__main__`` blocks, ...) and a few inputs
made here (too big or too odd to commit: a 10,000-step flow, deep nesting, a
directory, a missing path) goes through the real CLI, in-process. Each run either
exits 2 with nothing written and nothing on stdout, every error line
``<flow>:<line>:<col>: error: ...`` followed by its ``  hint: ...`` line; or exits 0
with modules that compile. A traceback fails the test.

``ok_*`` files must generate, ``bad_*`` ones must be rejected, with the text of their
``# expect:`` first line in the first error.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mf_temporal_codegen.cli import main

ROOT = Path(__file__).resolve().parent.parent
FUZZ = Path("tests") / "fuzz"  # relative to ROOT, as users name their flows
CORPUS = sorted(
    p.name for p in (ROOT / FUZZ).glob("*.py") if p.name != "make_corpus.py"
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("MF_TEMPORAL_CODEGEN_NO_CACHE", "1")


def _generate(flow: Path | str, out: Path, capsys) -> tuple[int, str, str]:
    code = main([str(flow), "-o", str(out)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _check_outcome(flow: str, code: int, stdout: str, stderr: str, out: Path) -> None:
    """Exit 2 with well-formed errors and nothing written, or exit 0 with modules
    that compile."""
    assert "Traceback" not in stderr, stderr
    if code == 0:
        written = sorted(out.glob("*.py"))
        assert written, stdout
        assert stdout.splitlines() == [f"wrote {p}" for p in written]
        for module in written:
            compile(module.read_text(), str(module), "exec")
        return
    assert code == 2, stderr
    assert stdout == ""
    assert not out.exists()
    lines = stderr.splitlines()
    assert lines and len(lines) % 2 == 0, stderr
    error = re.compile(rf"^{re.escape(flow)}:\d+:\d+: error: \S")
    for message, hint in zip(lines[::2], lines[1::2]):
        assert error.match(message), stderr
        assert hint.startswith("  hint: ") and len(hint) > len("  hint: "), stderr


def _expected(data: bytes) -> str | None:
    """The ``# expect: ...`` first line of a corpus file (any encoding that keeps ASCII)."""
    for line in data.replace(b"\xff\xfe", b"").splitlines()[:1]:
        if line.startswith(b"# expect: "):
            return line[len(b"# expect: ") :].decode("ascii")
    return None


def test_the_corpus_is_big_enough():
    assert len(CORPUS) >= 60
    assert [n for n in CORPUS if n.startswith(("trunc_", "cut_"))]
    assert [n for n in CORPUS if n.startswith("ok_")] and [
        n for n in CORPUS if n.startswith("bad_")
    ]


@pytest.mark.parametrize("name", CORPUS)
def test_corpus(name: str, tmp_path: Path, capsys):
    flow = (FUZZ / name).as_posix()
    out = tmp_path / "out"
    code, stdout, stderr = _generate(flow, out, capsys)
    _check_outcome(flow, code, stdout, stderr, out)
    if name.startswith("ok_"):
        assert code == 0, stderr
    elif name.startswith("bad_"):
        assert code == 2, stdout
        expect = _expected((ROOT / flow).read_bytes())
        if expect is not None:
            assert expect in stderr.splitlines()[0], stderr


def test_two_flows_generate_only_the_one_main_runs(tmp_path: Path, capsys):
    out = tmp_path / "out"
    code, _, stderr = _generate(FUZZ / "ok_two_flows_main_picks_one.py", out, capsys)
    assert code == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == ["b_worker.py", "b_workflow.py"]
    code, _, stderr = _generate(
        FUZZ / "ok_base_flow_in_file.py", tmp_path / "child", capsys
    )
    assert code == 0, stderr
    assert sorted(p.name for p in (tmp_path / "child").iterdir()) == [
        "child_worker.py",
        "child_workflow.py",
    ]


def test_parameters_metaflow_never_registers_are_not_parameters(tmp_path: Path, capsys):
    """`name = Parameter("name")`: Metaflow skips class attributes called `name` (the
    flow's name) or starting with "_": `python flow.py run --name x` is "no such
    option", and `self.name` is the flow's name. The module has no such field."""
    out = tmp_path / "out"
    code, _, stderr = _generate(FUZZ / "ok_parameter_called_name.py", out, capsys)
    assert code == 0, stderr
    text = (out / "f_workflow.py").read_text()
    assert "Parameters of F, as Metaflow `Parameter`s (none)." in text


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _linear(steps: int) -> str:
    names = ["start"] + [f"s{i}" for i in range(1, steps - 1)] + ["end"]
    lines = ["from metaflow import FlowSpec, step", "", "", "class LongFlow(FlowSpec):"]
    for a, b in zip(names, names[1:]):
        lines += [
            "    @step",
            f"    def {a}(self):",
            f"        self.next(self.{b})",
            "",
        ]
    lines += [
        "    @step",
        "    def end(self):",
        "        pass",
        "",
        "",
        'if __name__ == "__main__":',
        "    LongFlow()",
        "",
    ]
    return "\n".join(lines)


def test_a_linear_flow_of_10000_steps_generates(tmp_path: Path, capsys):
    """Metaflow runs flows of thousands of steps: no recursion limit here either."""
    flow = _write(tmp_path / "long_flow.py", _linear(10_000))
    out = tmp_path / "out"
    code, stdout, stderr = _generate(flow, out, capsys)
    _check_outcome(flow, code, stdout, stderr, out)
    assert code == 0
    text = (out / "long_flow_workflow.py").read_text()
    assert text.count("await run.step(") == 10_000


def _nested_switches(depth: int) -> str:
    """``depth`` switches, each case `a` leading to the next one: the cases only meet
    at the end, so each is nested in the one before."""
    lines = ["from metaflow import FlowSpec, step", "", "", "class NestFlow(FlowSpec):"]
    lines += [
        "    @step",
        "    def start(self):",
        "        self.x = 'a'",
        "        self.next(self.w0)",
        "",
    ]
    for i in range(depth):
        nxt = f"w{i + 1}" if i + 1 < depth else "last"
        lines += [
            "    @step",
            f"    def w{i}(self):",
            f"        self.next({{'a': self.{nxt}, 'b': self.end}}, condition='x')",
            "",
        ]
    lines += ["    @step", "    def last(self):", "        self.next(self.end)", ""]
    lines += [
        "    @step",
        "    def end(self):",
        "        pass",
        "",
        "",
        'if __name__ == "__main__":',
        "    NestFlow()",
        "",
    ]
    return "\n".join(lines)


def _nested_foreach(depth: int) -> str:
    lines = ["from metaflow import FlowSpec, step", "", "", "class DeepFlow(FlowSpec):"]
    for i in range(depth):
        this = "start" if i == 0 else f"f{i}"
        lines += [
            "    @step",
            f"    def {this}(self):",
            "        self.items = [1]",
            f"        self.next(self.f{i + 1}, foreach='items')",
            "",
        ]
    lines += [
        "    @step",
        f"    def f{depth}(self):",
        f"        self.next(self.j{depth - 1})",
        "",
    ]
    for i in reversed(range(depth)):
        nxt = f"j{i - 1}" if i else "end"
        lines += [
            "    @step",
            f"    def j{i}(self, inputs):",
            f"        self.next(self.{nxt})",
            "",
        ]
    lines += [
        "    @step",
        "    def end(self):",
        "        pass",
        "",
        "",
        'if __name__ == "__main__":',
        "    DeepFlow()",
        "",
    ]
    return "\n".join(lines)


def _wide_split(width: int) -> str:
    branches = [f"b{i}" for i in range(width)]
    lines = ["from metaflow import FlowSpec, step", "", "", "class WideFlow(FlowSpec):"]
    lines += [
        "    @step",
        "    def start(self):",
        "        self.next(" + ", ".join(f"self.{b}" for b in branches) + ")",
        "",
    ]
    for b in branches:
        lines += [
            "    @step",
            f"    def {b}(self):",
            "        self.next(self.join)",
            "",
        ]
    lines += [
        "    @step",
        "    def join(self, inputs):",
        "        self.next(self.end)",
        "",
    ]
    lines += [
        "    @step",
        "    def end(self):",
        "        pass",
        "",
        "",
        'if __name__ == "__main__":',
        "    WideFlow()",
        "",
    ]
    return "\n".join(lines)


@pytest.mark.parametrize(
    "name, text, generates",
    [
        ("nested_switches_64", _nested_switches(64), True),
        # each case is indented once more: Python allows 100 levels
        ("nested_switches_65", _nested_switches(65), False),
        ("nested_foreach_40", _nested_foreach(40), True),
        ("nested_foreach_70", _nested_foreach(70), False),
        ("wide_split_500", _wide_split(500), True),
    ],
)
def test_big_shapes(name: str, text: str, generates: bool, tmp_path: Path, capsys):
    flow = _write(tmp_path / f"{name}.py", text)
    out = tmp_path / "out"
    code, stdout, stderr = _generate(flow, out, capsys)
    _check_outcome(flow, code, stdout, stderr, out)
    assert code == (0 if generates else 2), stderr
    if not generates:
        assert "is nested in more than 64 splits, foreaches and switch cases" in stderr


def test_paths_that_are_not_flow_files(tmp_path: Path, capsys):
    folder = tmp_path / "flow.py"
    folder.mkdir()
    for flow, message in (
        (str(folder), "is a directory, not a flow file"),
        (str(tmp_path / "missing.py"), "no such file"),
    ):
        out = tmp_path / "out"
        code, stdout, stderr = _generate(flow, out, capsys)
        _check_outcome(flow, code, stdout, stderr, out)
        assert code == 2 and stderr.startswith(
            f"{flow}:1:1: error: {message}\n  hint: "
        ), stderr
