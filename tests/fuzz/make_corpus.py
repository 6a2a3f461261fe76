"""Write the fuzz corpus: broken (and some tricky but valid) flow files.

Run from the repository root to regenerate it: ``python tests/fuzz/make_corpus.py``.
The files are committed so that the corpus can be reviewed; ``tests/test_fuzz.py``
runs the generator's CLI on every one of them (and on a few inputs too big or too
odd to commit, which it makes itself).

Names say what the generator must do:

- ``ok_*.py``: valid Metaflow the generator must generate (exit 0);
- ``bad_*.py``: rejected (exit 2), the first line ``# expect: <text>`` giving a part
  of the first error message;
- ``trunc_<example>_c<N>.py``: an example cut after N% of its bytes (often mid-token,
  mid-character or before its ``__main__`` block);
- ``cut_<example>_l<N>.py``: an example cut after N% of its lines, with its
  ``__main__`` block added back (so that the broken graph itself is what is read).

Truncated files may generate or be rejected; either way the output must be clean.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent.parent / "examples"
HEADER = "from metaflow import FlowSpec, Parameter, step\n\n\n"
MAIN = '\n\nif __name__ == "__main__":\n    {name}()\n'


def linear(name: str = "F", steps: str = "", main: bool = True) -> str:
    """A flow class ``name``: start -> end, plus ``steps`` (class body text)."""
    body = textwrap.dedent(steps).strip("\n")
    text = HEADER + f"class {name}(FlowSpec):\n"
    if body:
        text += textwrap.indent(body, "    ") + "\n\n"
    text += textwrap.indent(
        textwrap.dedent(
            """\
            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass
            """
        ),
        "    ",
    )
    return text + (MAIN.format(name=name) if main else "")


def flow(body: str, name: str = "F", main: bool = True, header: str = HEADER) -> str:
    """A flow class ``name`` with exactly the class body ``body``."""
    text = header + f"class {name}(FlowSpec):\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"
    return text + (MAIN.format(name=name) if main else "")


def bad(expect: str, text: str) -> str:
    return f"# expect: {expect}\n" + text


TWO = linear("A", main=False) + "\n\n" + linear("B", main=False)

CASES: dict[str, str | bytes] = {
    # -- which flow the file runs (its __main__ block)
    "ok_main_one_line.py": linear(main=False) + '\n\nif __name__ == "__main__": F()\n',
    "ok_main_reversed_test.py": linear(main=False) + "\n\nif '__main__' == __name__:\n    F(use_cli=True)\n",
    "ok_main_via_function.py": linear(main=False) + '\n\ndef main():\n    F()\n\n\nif __name__ == "__main__":\n    main()\n',
    "ok_main_in_try.py": linear(main=False)
    + '\n\nif __name__ == "__main__":\n    try:\n        F()\n    except KeyboardInterrupt:\n        pass\n',
    "ok_main_same_flow_either_way.py": linear(main=False)
    + '\n\nif __name__ == "__main__":\n    import sys\n    if len(sys.argv) > 5:\n        F()\n    else:\n        F()\n',
    # the first flow created runs (its command line exits); B() is never reached
    "ok_two_flows_first_runs.py": TWO + '\n\nif __name__ == "__main__":\n    A()\n    B()\n',
    "ok_two_flows_main_picks_one.py": TWO + MAIN.format(name="B"),
    "ok_base_flow_in_file.py": HEADER
    + textwrap.dedent(
        """\
        class Base(FlowSpec):
            @step
            def start(self):
                self.next(self.end)


        class Child(Base):
            @step
            def end(self):
                pass
        """
    )
    + MAIN.format(name="Child"),
    "ok_base_flow_instantiated.py": HEADER
    + textwrap.dedent(
        """\
        class Base(FlowSpec):
            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass


        class Child(Base):
            @step
            def end(self):
                print("child")
        """
    )
    + MAIN.format(name="Base"),
    "bad_no_main.py": bad('no `if __name__ == "__main__":` block instantiates a flow', linear(main=False)),
    "bad_two_flows_no_main.py": bad('no `if __name__ == "__main__":` block instantiates a flow', TWO),
    "bad_main_instantiates_nothing.py": bad(
        "the __main__ block instantiates no flow", linear(main=False) + '\n\nif __name__ == "__main__":\n    print("hi")\n'
    ),
    "bad_main_not_a_flow.py": bad(
        "the __main__ block instantiates Helper, which is not a Metaflow flow",
        linear(main=False) + '\n\nclass Helper:\n    pass\n\n\nif __name__ == "__main__":\n    Helper()\n',
    ),
    "bad_main_before_class.py": bad(
        "F is instantiated before its class statement",
        HEADER + 'if __name__ == "__main__":\n    F()\n\n\n' + linear(main=False),
    ),
    "bad_main_ambiguous.py": bad(
        "the __main__ block may instantiate any of the flows A, B",
        TWO + '\n\nif __name__ == "__main__":\n    import sys\n    if "b" in sys.argv:\n        B()\n    else:\n        A()\n',
    ),
    "bad_main_use_cli_false.py": bad(
        "F(use_cli=False) does not run the flow", linear(main=False) + '\n\nif __name__ == "__main__":\n    F(use_cli=False)\n'
    ),
    "bad_main_missing_import.py": bad(
        "cannot find module 'no_such_flows'",
        HEADER + "from no_such_flows import TrainFlow\n" + MAIN.format(name="TrainFlow"),
    ),
    "bad_main_wrong_test.py": bad(
        'no `if __name__ == "__main__":` block instantiates a flow',
        linear(main=False) + '\n\nif __name__ == "main":\n    F()\n',
    ),
    # -- base classes
    "bad_self_base.py": bad(
        "class Base derives from itself",
        HEADER + "class Base(Base):\n    @step\n    def start(self):\n        self.next(self.end)\n\n    @step\n    def end(self):\n        pass\n"
        + MAIN.format(name="Base"),
    ),
    "bad_cyclic_bases.py": bad(
        "base class B of A is defined below it",
        HEADER + "class A(B):\n    pass\n\n\nclass B(A):\n    @step\n    def start(self):\n        self.next(self.end)\n\n"
        "    @step\n    def end(self):\n        pass\n" + MAIN.format(name="B"),
    ),
    "bad_cycle_a.py": bad(
        "cyclic inheritance",
        "from metaflow import step\nfrom bad_cycle_b import B\n\n\nclass A(B):\n    @step\n    def end(self):\n        pass\n"
        + MAIN.format(name="A"),
    ),
    "bad_cycle_b.py": bad(
        "cyclic inheritance",
        "from metaflow import step\nfrom bad_cycle_a import A\n\n\nclass B(A):\n    @step\n    def start(self):\n"
        "        self.next(self.end)\n" + MAIN.format(name="B"),
    ),
    "bad_undefined_base.py": bad(
        "base class Pipline of F is not defined",
        HEADER + "class F(Pipline):\n    pass\n" + MAIN.format(name="F"),
    ),
    "bad_missing_module.py": bad(
        "cannot find module 'no_such_package'",
        "from metaflow import step\nfrom no_such_package.base import Base\n\n\nclass F(Base):\n    @step\n    def start(self):\n"
        "        self.next(self.end)\n\n    @step\n    def end(self):\n        pass\n" + MAIN.format(name="F"),
    ),
    # -- what the file is made of
    "bad_empty.py": "",
    "bad_only_comment.py": bad("no Metaflow flow found", ""),
    "bad_non_utf8.py": b"# expect: is not utf-8\n" + linear().encode().replace(b"pass", b"print('caf\xe9')"),
    "bad_non_utf8_first_line.py": b"\xff\xfe# expect: is not utf-8\n" + linear().encode(),
    "bad_utf16.py": "# expect: NUL byte\n".encode("utf-16"),
    "bad_nul_byte.py": b"# expect: NUL byte\n" + linear().encode().replace(b"pass", b"pass\x00"),
    "bad_unknown_encoding.py": b"# expect: unknown encoding\n# -*- coding: klingon -*-\n" + linear().encode(),
    "bad_binary.py": b"# expect: NUL byte\n" + bytes(range(256)),
    "ok_latin1_declared.py": ("# -*- coding: latin-1 -*-\n" + linear().replace("pass", "print('caf\xe9')")).encode("latin-1"),
    "ok_utf8_bom.py": b"\xef\xbb\xbf" + linear().encode(),
    "ok_crlf.py": linear().replace("\n", "\r\n").encode(),
    "ok_star_import.py": linear().replace("from metaflow import FlowSpec, Parameter, step", "from metaflow import *"),
    "bad_syntax_error.py": bad("invalid Python", linear().replace("def end(self):", "def end(self)")),
    "bad_tab_error.py": bad("invalid Python", linear().replace("        pass", "\t    pass")),
    "bad_nested_parens.py": bad("invalid Python", linear(steps="x = " + "(" * 300 + "1" + ")" * 300)),
    "bad_indentation_limit.py": bad(
        "invalid Python",
        linear(steps="def helper(self):\n" + "".join("    " * (i + 1) + "if True:\n" for i in range(101)) + "    " * 102 + "pass"),
    ),
    "ok_deep_blocks.py": linear(
        steps="def helper(self):\n" + "".join("    " * (i + 1) + "if True:\n" for i in range(90)) + "    " * 91 + "pass"
    ),
    "ok_deep_expression.py": linear(steps="X = " + " + ".join(["1"] * 800)),
    "bad_deep_expression.py": bad("nests too deeply", linear(steps="X = " + " + ".join(["1"] * 3000))),
    "ok_long_line.py": linear(steps="X = " + repr("x" * 200_000)),
    "ok_constant_cycle.py": linear(steps='p = Parameter("p", default=A)').replace("\n\nclass F", "\nA = B\nB = A\n\n\nclass F"),
    "ok_huge_power.py": linear(steps='p = Parameter("p", default=10 ** 10 ** 10)'),
    # -- steps and transitions
    "bad_no_steps.py": bad("flow F has no @step methods", flow("def start(self):\n    pass")),
    "bad_no_end.py": bad("flow F has no end step", flow("@step\ndef start(self):\n    self.next(self.middle)\n\n@step\ndef middle(self):\n    pass")),
    "bad_no_start.py": bad("flow F has no start step", flow("@step\ndef begin(self):\n    self.next(self.end)\n\n@step\ndef end(self):\n    pass")),
    "bad_missing_next.py": bad(
        "step middle does not end with a self.next() transition",
        flow("@step\ndef start(self):\n    self.next(self.middle)\n\n@step\ndef middle(self):\n    self.x = 1\n\n@step\ndef end(self):\n    pass"),
    ),
    "bad_next_not_last.py": bad(
        "step start does not end with a self.next() transition",
        flow("@step\ndef start(self):\n    self.next(self.end)\n    print('after')\n\n@step\ndef end(self):\n    pass"),
    ),
    "bad_next_empty.py": bad("self.next() names no step", flow("@step\ndef start(self):\n    self.next()\n\n@step\ndef end(self):\n    pass")),
    "bad_unknown_step.py": bad(
        "step start transitions to unknown step 'ned'", flow("@step\ndef start(self):\n    self.next(self.ned)\n\n@step\ndef end(self):\n    pass")
    ),
    "bad_next_to_helper.py": bad(
        "step start transitions to unknown step 'helper'",
        flow("@step\ndef start(self):\n    self.next(self.helper)\n\ndef helper(self):\n    pass\n\n@step\ndef end(self):\n    pass"),
    ),
    "bad_dynamic_next.py": bad(
        "dynamic transition `getattr(self, 'end')`", flow("@step\ndef start(self):\n    self.next(getattr(self, 'end'))\n\n@step\ndef end(self):\n    pass")
    ),
    "bad_lambda_next.py": bad("dynamic transition", flow("@step\ndef start(self):\n    self.next(lambda: self.end)\n\n@step\ndef end(self):\n    pass")),
    "bad_starred_next.py": bad(
        "starred argument", flow("@step\ndef start(self):\n    steps = [self.end]\n    self.next(*steps)\n\n@step\ndef end(self):\n    pass")
    ),
    "bad_unknown_next_argument.py": bad(
        "unknown self.next() argument `each=`",
        flow("@step\ndef start(self):\n    self.next(self.end, each='x')\n\n@step\ndef end(self):\n    pass"),
    ),
    "bad_step_without_self.py": bad("step start is missing the 'self' argument", flow("@step\ndef start():\n    pass\n\n@step\ndef end(self):\n    pass")),
    "bad_end_next.py": bad("the end step end must not call self.next()", flow("@step\ndef start(self):\n    self.next(self.end)\n\n@step\ndef end(self):\n    self.next(self.end)")),
    "bad_back_to_start.py": bad(
        "transitions to the start step",
        flow("@step\ndef start(self):\n    self.next(self.a)\n\n@step\ndef a(self):\n    self.next(self.start)\n\n@step\ndef end(self):\n    pass"),
    ),
    "bad_loop.py": bad(
        "there is a loop in the flow",
        flow(
            "@step\ndef start(self):\n    self.next(self.a)\n\n@step\ndef a(self):\n    self.next(self.b)\n\n"
            "@step\ndef b(self):\n    self.next(self.a)\n\n@step\ndef end(self):\n    pass"
        ),
    ),
    "bad_unreachable.py": bad(
        "step orphan is unreachable",
        flow("@step\ndef start(self):\n    self.next(self.end)\n\n@step\ndef orphan(self):\n    self.next(self.end)\n\n@step\ndef end(self):\n    pass"),
    ),
    "bad_join_arity.py": bad(
        "join step join expects 3 incoming paths",
        flow(
            "@step\ndef start(self):\n    self.next(self.a, self.b, self.c)\n\n@step\ndef a(self):\n    self.next(self.join)\n\n"
            "@step\ndef b(self):\n    self.next(self.join)\n\n@step\ndef c(self):\n    self.next(self.end)\n\n"
            "@step\ndef join(self, inputs):\n    self.next(self.end)\n\n@step\ndef end(self):\n    pass"
        ),
    ),
    "bad_join_without_split.py": bad(
        "step join takes inputs but no split precedes it",
        flow("@step\ndef start(self):\n    self.next(self.join)\n\n@step\ndef join(self, inputs):\n    self.next(self.end)\n\n@step\ndef end(self):\n    pass"),
    ),
    "bad_split_never_joined.py": bad(
        "the end step is reached before the split(s) a, b were joined",
        flow(
            "@step\ndef start(self):\n    self.next(self.a, self.b)\n\n@step\ndef a(self):\n    self.next(self.end)\n\n"
            "@step\ndef b(self):\n    self.next(self.end)\n\n@step\ndef end(self):\n    pass"
        ),
    ),
    "bad_foreach_variable.py": bad(
        "foreach variable must be a string literal",
        flow(
            "@step\ndef start(self):\n    self.items = [1]\n    self.next(self.body, foreach=self.items)\n\n"
            "@step\ndef body(self):\n    self.next(self.join)\n\n@step\ndef join(self, inputs):\n    self.next(self.end)\n\n@step\ndef end(self):\n    pass"
        ),
    ),
    "bad_foreach_into_join.py": bad(
        "foreach start goes straight into a join",
        flow(
            "@step\ndef start(self):\n    self.items = [1]\n    self.next(self.join, foreach='items')\n\n"
            "@step\ndef join(self, inputs):\n    self.next(self.end)\n\n@step\ndef end(self):\n    pass"
        ),
    ),
    "bad_switch_one_case.py": bad(
        "switch step start defines 1 case(s)",
        flow("@step\ndef start(self):\n    self.x = 'a'\n    self.next({'a': self.end}, condition='x')\n\n@step\ndef end(self):\n    pass"),
    ),
    "bad_switch_no_condition.py": bad(
        "needs condition='attr'",
        flow("@step\ndef start(self):\n    self.next({'a': self.a, 'b': self.end})\n\n@step\ndef a(self):\n    self.next(self.end)\n\n@step\ndef end(self):\n    pass"),
    ),
    "bad_switch_to_join.py": bad(
        "leads straight into the join step",
        flow(
            "@step\ndef start(self):\n    self.next(self.a, self.b)\n\n@step\ndef a(self):\n    self.x = 'j'\n"
            "    self.next({'j': self.join, 'c': self.c}, condition='x')\n\n@step\ndef c(self):\n    self.next(self.join)\n\n"
            "@step\ndef b(self):\n    self.next(self.join)\n\n@step\ndef join(self, inputs):\n    self.next(self.end)\n\n@step\ndef end(self):\n    pass"
        ),
    ),
    "bad_two_start_flags.py": bad(
        "multiple steps are annotated with @step(start=True)",
        flow(
            "@step(start=True)\ndef one(self):\n    self.next(self.two)\n\n@step(start=True)\ndef two(self):\n    self.next(self.end)\n\n"
            "@step\ndef end(self):\n    pass"
        ),
    ),
    "bad_reserved_step_name.py": bad(
        "step name 'input' is reserved",
        flow("@step\ndef start(self):\n    self.next(self.input)\n\n@step\ndef input(self):\n    self.next(self.end)\n\n@step\ndef end(self):\n    pass"),
    ),
    # -- class attributes
    "bad_parameter_without_name.py": bad("p: a name is required", linear(steps="p = Parameter()")),
    "bad_parameter_int_name.py": bad("p: the name must be a string, got `123`", linear(steps="p = Parameter(123)")),
    "bad_parameter_reserved.py": bad("Parameter name 'tags' is a reserved word", linear(steps='tags = Parameter("tags", default="x")')),
    "bad_parameter_type.py": bad("unsupported type", linear(steps='p = Parameter("p", type=list)')),
    "bad_parameter_not_an_option.py": bad(
        "Parameter name 'm(ode' cannot be a command-line option", linear(steps='p = Parameter("m(ode", default="x")')
    ),
    "bad_parameter_keyword.py": bad("Parameter name 'class' is a Python keyword", linear(steps='p = Parameter("class", default="x")')),
    "ok_parameter_dashes_unicode.py": linear(steps='p = Parameter("my-param", default=1)\nq = Parameter("n\u00e4me", default=2)'),
    "bad_parameter_starred.py": bad("cannot read `**opts`", linear(steps='opts = {}\np = Parameter("p", **opts)')),
    # Metaflow never takes an attribute called `name` (the flow's name) or "_..." for
    # a Parameter: no --name option; the flow is valid
    "ok_parameter_called_name.py": linear(steps='name = Parameter("name", default="x")\n_hidden = Parameter("tags")'),
    "bad_unsupported_decorator.py": bad(
        "unsupported decorator @parallel",
        flow(
            "@step\ndef start(self):\n    self.next(self.end)\n\n@parallel\n@step\ndef end(self):\n    pass",
            header="from metaflow import FlowSpec, parallel, step\n\n\n",
        ),
    ),
    "bad_decorator_expression.py": bad(
        "cannot read decorator", flow("@step\ndef start(self):\n    self.next(self.end)\n\n@(lambda f: f)\n@step\ndef end(self):\n    pass")
    ),
}


def _flow_name(text: str) -> str:
    found = re.search(r'if __name__ == "__main__":\n\s+(\w+)\(', text)
    assert found, "every example ends with its __main__ block"
    return found.group(1)


def truncations() -> dict[str, bytes]:
    """Every example cut at several points."""
    out: dict[str, bytes] = {}
    for example in sorted(EXAMPLES.glob("*.py")):
        data = example.read_bytes()
        for percent in (35, 70):
            out[f"trunc_{example.stem}_c{percent}.py"] = data[: len(data) * percent // 100]
        lines = data.decode().splitlines(keepends=True)
        cut = "".join(lines[: len(lines) // 2])
        out[f"cut_{example.stem}_l50.py"] = (cut + MAIN.format(name=_flow_name(data.decode()))).encode()
    return out


def main() -> None:
    for old in HERE.glob("*.py"):
        if old.name != Path(__file__).name:
            old.unlink()
    files = {**{k: v if isinstance(v, bytes) else v.encode() for k, v in CASES.items()}, **truncations()}
    for name, data in sorted(files.items()):
        (HERE / name).write_bytes(data)
    print(f"wrote {len(files)} files to {HERE}")


if __name__ == "__main__":
    main()
