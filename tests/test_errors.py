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
        "unknown_decorator.py",
        "9:5",
        "unsupported decorator @nvidia",
        # @nvidia comes from a Metaflow extension that is not installed here
        "ImportError: cannot import name 'nvidia' from 'metaflow'",
    ),
    Case(
        "trigger.py",
        "4:1",
        "unsupported flow decorator @trigger",
        None,
        UNSUPPORTED + ": event triggers",
    ),
    Case(
        "param_default.py",
        "7:40",
        "Parameter 'stamp': the default must be a literal, got `time.time()`",
        None,
        STATIC + " evaluate a computed default",
    ),
    Case(
        "include_file.py",
        "5:12",
        "IncludeFile parameters are not supported yet",
        None,
        UNSUPPORTED + ": IncludeFile",
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
    "compensate_unknown_step.py": "did you mean 'charge'?",
    "unknown_step.py": "did you mean self.process?",
    "inherited_bad.py": "did you mean self.clean?",
    "join_arity.py": "branch c does not reach join; every branch of a split must reach its join",
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
    assert lines[0] == f"{shown}:{case.where}: error: {case.message}"
    assert len(lines) >= 2 and lines[1].startswith("  hint: "), result.stderr
    if case.file in HINTS:
        assert lines[1] == f"  hint: {HINTS[case.file]}"
    assert result.stdout == ""
    assert not out.exists()


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.metaflow], ids=lambda c: c.id
)
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
