"""Bad flows are rejected through the real CLI: exact position and message, a hint,
exit code 2, and nothing written.

Every fixture lives in tests/bad_inputs/ (one small flow per case). Where the
problem is one of Metaflow's own graph/lint rules, ``test_metaflow_rejects_too``
runs ``python <flow> check`` and asserts that Metaflow 2.19 refuses the same flow.
The remaining cases are valid Metaflow that the generator cannot read statically
or cannot run on Temporal yet; those say why in the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import codegen, metaflow_check

ROOT = Path(__file__).resolve().parent.parent
BAD = Path("tests") / "bad_inputs"  # relative to ROOT, so messages show relative paths


@dataclass(frozen=True)
class Case:
    file: str
    # the expected first line of stderr, after "<file>:"
    where: str
    message: str
    # a fragment of what `python <file> check` prints when Metaflow rejects the flow
    # too; None when Metaflow accepts it (see `why`)
    metaflow: str | None
    why: str = ""
    # the position names another file than the flow (an inherited base class)
    error_file: str | None = None
    # the message starts with ``message`` (it goes on with machine-specific paths)
    prefix: bool = False

    @property
    def id(self) -> str:
        return Path(self.file).stem


UNSUPPORTED = "the flow is valid Metaflow; the generator does not support it (yet)"
COMPENSATE = "@compensate is ours: Metaflow ignores it, the generator checks it"
STATIC = "the flow is valid Metaflow; the generator reads it statically and cannot"

CASES = [
    Case(
        "syntax_error.py",
        "7:18",
        "invalid Python: '[' was never closed",
        # CPython refuses to compile the file: same message, same line
        "SyntaxError: '[' was never closed",
    ),
    Case(
        "no_flowspec.py",
        "1:1",
        "no Metaflow flow found: no class derives from metaflow.FlowSpec",
        None,
        "Python runs the file fine: it simply defines no flow",
    ),
    Case(
        "missing_next.py",
        "10:9",
        "step middle does not end with a self.next() transition",
        "Step middle is missing a self.next() transition to the next step.",
    ),
    Case(
        "unknown_step.py",
        "7:9",
        "step start transitions to unknown step 'proces'",
        "Step start specifies a self.next() transition to an unknown step, proces.",
    ),
    Case(
        "dynamic_next.py",
        "8:19",
        "dynamic transition `getattr(self, name)` in self.next()",
        "Step start specifies an invalid self.next() transition.",
    ),
    Case(
        "starred_next.py",
        "8:19",
        "starred argument `*steps` in self.next() is dynamic",
        "Step start specifies an invalid self.next() transition.",
    ),
    Case(
        "join_arity.py",
        "22:9",
        "join step join expects 3 incoming paths, one per branch of the split "
        "into a, b, c, but gets a, b",
        # Metaflow: "... but an incorrect number of steps (b, a) lead to it. This join
        # was expecting 3 incoming paths, starting from split step(s) a, b, c."
        "This join was expecting 3 incoming paths, starting from split step(s) a, b, c.",
    ),
    Case(
        "foreach_var.py",
        "9:38",
        "foreach variable must be a string literal naming an artifact, got `name`",
        None,
        STATIC + " know which artifact `foreach=name` names",
    ),
    Case(
        "switch_no_condition.py",
        "8:9",
        "self.next() with a dict of cases (a switch) needs condition='attr'",
        "Step start specifies an invalid self.next() transition.",
    ),
    Case(
        "switch_condition.py",
        "9:57",
        "switch condition must be a string literal, got `attr`",
        "Step start specifies an invalid self.next() transition.",
    ),
    Case(
        "switch_key.py",
        "10:20",
        "switch key `KIND_A` is not a literal",
        "Step start specifies an invalid self.next() transition.",
    ),
    Case(
        "switch_to_join.py",
        "12:9",
        "switch step a leads straight into the join step join",
        # Metaflow points at the join; we point at the switch's transition
        "A conditional path cannot lead directly to a join step.",
    ),
    Case(
        "loop_back.py",
        "44:9",
        "there is a loop in the flow: a->b->c->a",
        # Metaflow walks from `a` without recording it, so it names the same loop
        # as b->c->a->b (at a's transition); we report the edge that closes it
        "There is a loop in your flow: b->c->a->b.",
    ),
    Case(
        "parallel_step.py",
        "9:5",
        "unsupported decorator @parallel",
        # Metaflow also wants num_parallel= and a join around a @parallel step
        "An @parallel step should be followed by a join step.",
    ),
    Case(
        "num_parallel.py",
        "7:44",
        "self.next(..., num_parallel=N) (@parallel) is not supported yet",
        "is called as a parallel step with self.next(num_parallel=..) but does not "
        "have a @parallel decorator.",
    ),
    Case(
        "trigger_event_type.py",
        "4:16",
        "Incorrect format for event attribute in @trigger decorator: got 3",
        "Incorrect format for event attribute in @trigger decorator.",
    ),
    Case(
        "trigger_two_events.py",
        "4:17",
        "@trigger(events=) with 2 events: not supported yet",
        None,
        UNSUPPORTED + ": a run that waits for several events",
    ),
    Case(
        "reserved_parameter.py",
        "5:22",
        "Parameter name 'tags' is a reserved word in Metaflow",
        "Parameter name 'tags' is a reserved word.",
    ),
    Case(
        "missing_base.py",
        "3:1",
        "cannot find module 'nowhere' for `from nowhere.pipeline import Pipeline` "
        "(searched tests/bad_inputs, ",
        "ModuleNotFoundError: No module named 'nowhere'",
        prefix=True,
    ),
    Case(
        "undefined_base.py",
        "14:16",
        "base class Pipline of TypoFlow is not defined (Python raises NameError)",
        "NameError: name 'Pipline' is not defined",
    ),
    Case(
        "reserved_name.py",
        "10:9",
        "step name 'input' is reserved by Metaflow",
        "Step name input is a reserved word.",
    ),
    Case(
        "end_next.py",
        "11:9",
        "the end step end must not call self.next()",
        "The end step end has outgoing transitions.",
    ),
    Case(
        "join_split.py",
        "18:9",
        "step join is both a join (it takes inputs) and a split",
        "Step join is both a join step (it takes an extra argument) and a split step",
    ),
    Case(
        "unreachable.py",
        "10:9",
        "step orphan is unreachable from the start step start",
        "Step orphan is unreachable from the entry step start.",
    ),
    Case(
        "inherited_bad.py",
        "10:9",
        "step start transitions to unknown step 'clen'",
        # Metaflow names the base class's file too
        "bad_base/pipeline.py on line 10:",
        error_file="bad_base/pipeline.py",
    ),
    Case(
        "retry_too_many.py",
        "5:5",
        "@retry(times=5) asks for more attempts than Metaflow allows",
        "The maximum number of retries is @retry(times=4).",
    ),
    Case(
        "pypi_step.py",
        "5:5",
        "unsupported decorator @pypi",
        # without --environment=pypi Metaflow refuses it too; with it, workers cannot
        # build the environment yet
        "@pypi decorator requires --environment=conda or --environment=pypi",
    ),
    Case(
        "no_main.py",
        "4:7",
        'no `if __name__ == "__main__":` block instantiates a flow',
        None,
        "`python no_main.py run` exits 0 and runs nothing: no __main__ block creates the flow",
    ),
    Case(
        "main_not_a_flow.py",
        "19:5",
        "the __main__ block instantiates Settings, which is not a Metaflow flow "
        "(it does not derive from metaflow.FlowSpec)",
        None,
        "`python main_not_a_flow.py run` exits 0 and runs nothing",
    ),
    Case(
        "cyclic_base.py",
        "4:16",
        "class Pipeline derives from itself (Python raises NameError: Pipeline is not "
        "defined yet)",
        "NameError: name 'Pipeline' is not defined",
    ),
    Case(
        "no_steps.py",
        "4:7",
        "flow NoStepsFlow has no @step methods",
        "Your flow must have exactly one start step.",
    ),
    Case(
        "not_utf8.py",
        "7:19",
        "invalid Python: byte 0xe9 is not utf-8 (no encoding declared)",
        "SyntaxError: Non-UTF-8 code starting with '\\xe9'",
    ),
    Case(
        "compensate_unknown_step.py",
        "15:5",
        "compensation refund undoes unknown step 'chrage'",
        None,
        COMPENSATE,
    ),
    Case(
        "compensate_twice.py",
        "15:5",
        "step start already has a compensation: undo "
        "(tests/bad_inputs/compensate_twice.py:11:5)",
        None,
        COMPENSATE,
    ),
    Case(
        "compensate_step.py",
        "11:5",
        "step end cannot also be a compensation",
        None,
        COMPENSATE,
    ),
    Case(
        "compensate_args.py",
        "12:9",
        "compensation undo must take only self",
        None,
        COMPENSATE,
    ),
    Case(
        "compensate_dynamic.py",
        "13:17",
        "@compensate needs the step name as a string literal, got `TARGET`",
        None,
        COMPENSATE,
    ),
]

HINTS = {
    "missing_base.py": "the generator looks for imports as `python flow.py` does (the flow's "
    "directory, then PYTHONPATH, then installed packages) without importing them; add the "
    "directory that holds it with --path DIR or PYTHONPATH=DIR",
    "compensate_unknown_step.py": "did you mean 'charge'?",
    "unknown_step.py": "did you mean self.process?",
    "inherited_bad.py": "did you mean self.clean?",
    "join_arity.py": "branch c does not reach join; every branch of a split must reach its join",
    "no_main.py": 'add `if __name__ == "__main__": NoMainFlow()` at the end of the file: '
    "`python flow.py run` does nothing without it",
    "main_not_a_flow.py": 'instantiate the flow class instead: `if __name__ == "__main__": MainNotAFlow()`',
}


def _tree(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_rejected_with_position_and_hint(case: Case, tmp_path: Path):
    out = tmp_path / "out"
    result = codegen(BAD / case.file, "-o", out)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    shown = (BAD / (case.error_file or case.file)).as_posix()
    expected = f"{shown}:{case.where}: error: {case.message}"
    assert (
        lines[0].startswith(expected) if case.prefix else lines[0] == expected
    ), lines[0]
    assert len(lines) >= 2 and lines[1].startswith("  hint: "), result.stderr
    if case.file in HINTS:
        assert lines[1] == f"  hint: {HINTS[case.file]}"
    assert result.stdout == ""
    assert not out.exists()


@pytest.mark.parametrize("case", [c for c in CASES if c.metaflow], ids=lambda c: c.id)
def test_metaflow_rejects_too(case: Case, tmp_path: Path):
    result = metaflow_check(BAD / case.file, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert case.metaflow in " ".join(output.split()), output


def test_good_flow_is_accepted_by_both(tmp_path: Path):
    """The control: the good fixture generates, and Metaflow accepts it."""
    out = tmp_path / "out"
    result = codegen(BAD / "good.py", "-o", out)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "good_flow_worker.py",
        "good_flow_workflow.py",
    ]
    check = metaflow_check(BAD / "good.py", tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "The graph looks good!" in check.stdout + check.stderr


@pytest.mark.parametrize("bad", ["join_arity.py", "inherited_bad.py"])
def test_no_partial_output(bad: str, tmp_path: Path):
    """A bad flow next to a good one in the same command changes nothing in OUTDIR."""
    out = tmp_path / "out"
    first = codegen(BAD / "good.py", "-o", out)
    assert first.returncode == 0, first.stderr
    before = _tree(out)
    assert before

    # regenerating the good flow alone is a no-op (so a change below would be real)
    assert codegen(BAD / "good.py", "-o", out).returncode == 0
    assert _tree(out) == before

    for order in ((BAD / "good.py", BAD / bad), (BAD / bad, BAD / "good.py")):
        result = codegen(*order, "-o", out)
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        assert _tree(out) == before

    # nor is a fresh OUTDIR created
    fresh = tmp_path / "fresh"
    result = codegen(BAD / "good.py", BAD / bad, "-o", fresh)
    assert result.returncode == 2
    assert not fresh.exists()


# Once rejected, now generated: the value or decorator is Metaflow's to evaluate.
ACCEPTED = {
    # a decorator of a Metaflow extension (not installed here: the worker's check
    # against Metaflow refuses to start then, as `python flow.py` fails to import)
    "unknown_decorator.py": "@nvidia",
    # a computed default, evaluated by Metaflow when each run starts
    "param_default.py": "time.time()",
    # an IncludeFile parameter (its value is the file's path)
    "include_file.py": "data.csv",
    # an event trigger (the subscription is kept on the Temporal server)
    "trigger.py": "data_ready",
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_formerly_rejected_inputs_generate(name: str, tmp_path: Path):
    out = tmp_path / "out"
    result = codegen(BAD / name, "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    workflows = list(out.glob("*_workflow.py"))
    assert len(workflows) == 1


def test_every_error_of_a_file_is_reported_in_order(tmp_path: Path):
    """A reserved parameter name, an unsupported decorator and an unknown step: one
    run reports all three, sorted by position, exits 2 and writes nothing."""
    out = tmp_path / "out"
    result = codegen(BAD / "three_errors.py", "-o", out)
    assert result.returncode == 2
    assert result.stdout == ""
    assert not out.exists()
    shown = (BAD / "three_errors.py").as_posix()
    errors = [
        line for line in result.stderr.splitlines() if not line.startswith("  hint: ")
    ]
    assert errors == [
        f"{shown}:7:24: error: Parameter name 'run_id' is a reserved word in Metaflow",
        f"{shown}:13:5: error: unsupported decorator @parallel",
        f"{shown}:16:9: error: step middle transitions to unknown step 'ned'",
    ]
    # each error has its hint right below it
    assert len(result.stderr.splitlines()) == 6
    assert result.stderr.splitlines()[5] == "  hint: did you mean self.end?"


def test_errors_of_every_file_are_reported(tmp_path: Path):
    """Errors in two flow files (and a good one between them) are all reported,
    sorted by file; nothing is written."""
    out = tmp_path / "out"
    result = codegen(
        BAD / "three_errors.py", BAD / "good.py", BAD / "join_arity.py", "-o", out
    )
    assert result.returncode == 2
    assert result.stdout == "" and not out.exists()
    files = [
        line.split(":")[0]
        for line in result.stderr.splitlines()
        if not line.startswith("  ")
    ]
    assert (
        files
        == [(BAD / "join_arity.py").as_posix()]
        + [(BAD / "three_errors.py").as_posix()] * 3
    )


def test_every_error_has_a_hint():
    """Each error the generator can raise is built with a hint (a one-line fix)."""
    import ast

    builders = {
        "CodegenError": 3,
        "_Undefined": 3,
        "_error": 3,
        "_fail": 3,
        "Missing": 2,
    }
    missing = []
    for path in sorted((ROOT / "codegen").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(
                    node.func, "attr", None
                )
                given = len(node.args) + len(node.keywords)
                if (
                    name in builders
                    and given < builders[name]
                    and not any(isinstance(a, ast.Starred) for a in node.args)
                ):
                    missing.append(
                        f"{path.name}:{node.lineno}: {ast.unparse(node)[:80]}"
                    )
    assert missing == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--max-workers", "0"], "--max-workers must be at least 1"),
        (["--environment", "conda"], "--environment=conda is not supported"),
    ],
)
def test_option_errors_have_hints(args: list[str], message: str, tmp_path: Path):
    out = tmp_path / "out"
    result = codegen(BAD / "good.py", "-o", out, *args)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"mf-temporal-codegen: error: {message}"), result.stderr
    assert len(lines) == 2 and lines[1].startswith("  hint: "), result.stderr
    assert not out.exists()
