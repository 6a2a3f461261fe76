"""The generation cache: a hit returns exactly what a fresh run would, and nothing heavy loads.

In-process tests count the generator's real runs (``pipeline._sources``) to tell a hit
from a miss; subprocess tests check the CLI as a user runs it, in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import jinja2
import pytest

from mf_temporal_codegen import cache as cache_mod
from mf_temporal_codegen import pipeline
from mf_temporal_codegen.cache import Cache, folder, template_cache
from mf_temporal_codegen.errors import CodegenError
from mf_temporal_codegen.pipeline import Options, generate

from helpers import ROOT

FLOW = '''\
from metaflow import step
from common.pipeline import Pipeline


class CachedFlow(Pipeline):
    """A flow whose Parameters come from a local base module."""

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CachedFlow()
'''
PIPELINE = """\
from metaflow import FlowSpec, Parameter


class Pipeline(FlowSpec):
    limit = Parameter("limit", default=4)
"""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project (cwd) with flow.py whose base class lives in common/pipeline.py."""
    proj = tmp_path / "proj"
    _write(proj / "pyproject.toml", "")
    _write(proj / "flow.py", FLOW)
    _write(proj / "common" / "__init__.py", "")
    _write(proj / "common" / "pipeline.py", PIPELINE)
    monkeypatch.chdir(proj)
    # searched after the flow's directory (relative to the working directory)
    monkeypatch.setenv("PYTHONPATH", "vendor")
    return proj


@pytest.fixture
def runs(monkeypatch):
    """One entry per real generator run (a cache miss or an uncached run)."""
    calls = []
    real = pipeline._sources

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "_sources", counting)
    return calls


@pytest.fixture
def cache(tmp_path):
    return Cache(tmp_path / "cache")


def _gen(
    cache: Cache | None, options: Options = Options(), flow: str = "flow.py"
) -> dict[Path, str]:
    return generate([Path(flow)], Path("out"), options, cache)


def _entries(cache: Cache) -> list[Path]:
    return sorted((cache.root / "generated").glob("*.json"))


def test_hit_returns_the_uncached_result(project, cache, runs):
    fresh = _gen(None)
    assert _gen(cache) == fresh and len(runs) == 2
    assert _gen(cache) == fresh and len(runs) == 2, "second run must be a hit"
    assert "limit: int = 4" in fresh[Path("out/cached_flow_workflow.py")]
    assert len(_entries(cache)) == 1


def _symlinked_base(proj: Path, default: int) -> None:
    """common -> a copy whose relative import reaches a base with ``default``."""
    target = proj / f"common_{default}"
    _write(target / "__init__.py", "")
    _write(target / "pipeline.py", "from .base import Pipeline\n")
    _write(target / "base.py", PIPELINE.replace("default=4", f"default={default}"))
    shutil.rmtree(proj / "common", ignore_errors=True)
    if (proj / "common").is_symlink():
        (proj / "common").unlink()
    (proj / "common").symlink_to(target.name)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


# Each changes something the output depends on; setup runs before the first generation.
def _import_mixin(proj: Path) -> None:
    _edit(
        proj / "flow.py",
        "from metaflow import step",
        "from metaflow import step\nfrom mixins import Mixin",
    )
    _edit(proj / "flow.py", "(Pipeline)", "(Mixin, Pipeline)")


def _vendored_mixin(proj: Path) -> None:
    _import_mixin(proj)
    _write(
        proj / "vendor" / "mixins.py",
        PIPELINE.replace("Pipeline", "Mixin").replace("limit", "vendored"),
    )


# Each changes something the output depends on; setup runs before the first generation.
CHANGES = {
    "flow file": (
        None,
        lambda p: _edit(p / "flow.py", "A flow whose", "The flow whose"),
    ),
    "local base module": (
        None,
        lambda p: _edit(p / "common" / "pipeline.py", "default=4", "default=5"),
    ),
    # the parser probed common/pipeline/ (absent) before it found the module; a
    # regular package wins over a module of the same name, as in Python
    "a package appears next to the base module": (
        None,
        lambda p: _write(
            p / "common" / "pipeline" / "__init__.py",
            PIPELINE.replace("default=4", "default=5"),
        ),
    ),
    # from mixins import Mixin resolved to vendor/ (PYTHONPATH); the flow's own
    # directory comes first, where the parser probed mixins.py (absent) before
    "a module appears earlier on the search path": (
        _vendored_mixin,
        lambda p: _write(
            p / "mixins.py",
            PIPELINE.replace("Pipeline", "Mixin").replace("limit", "extra"),
        ),
    ),
    # identical bytes on every path the parser read before; only the symlink moved,
    # so the relative import in the base module now reaches a different file
    "symlinked base directory retargeted": (
        lambda p: _symlinked_base(p, 6),
        lambda p: _symlinked_base(p, 7),
    ),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_changed_input_is_a_miss(project, cache, runs, change):
    setup, apply = CHANGES[change]
    if setup:
        setup(project)
    before = _gen(cache)
    apply(project)
    after = _gen(cache)
    assert len(runs) == 2, "the change must be a miss"
    assert after != before
    assert after == _gen(None), "the miss must give what an uncached run gives"
    assert _gen(cache) == after and len(runs) == 3, "and then be a hit"


def test_options_are_part_of_the_key(project, cache, runs):
    tagged = Options(tags=("nightly",), flags=("--tag=nightly",))
    plain, with_tag = _gen(cache), _gen(cache, tagged)
    assert plain != with_tag and len(runs) == 2
    assert _gen(cache) == plain and _gen(cache, tagged) == with_tag and len(runs) == 2


def test_output_dir_and_working_dir_are_part_of_the_key(
    project, cache, runs, monkeypatch
):
    first = _gen(cache)
    other = generate([Path("flow.py")], Path("gen/out"), Options(), cache)
    assert len(runs) == 2 and set(first) != set(other)
    # the same relative arguments in another checkout
    clone = project.parent / "clone"
    shutil.copytree(project, clone)
    _edit(clone / "common" / "pipeline.py", "default=4", "default=8")
    monkeypatch.chdir(clone)
    assert _gen(cache) == _gen(None) != first and len(runs) == 4


ENVIRONMENT = {
    "generator source or template": lambda mp: mp.setattr(
        cache_mod, "_generator", lambda: "edited"
    ),
    "python version": lambda mp: mp.setattr(sys, "version", sys.version + " (other)"),
    "tool version": lambda mp: mp.setattr("mf_temporal_codegen.__version__", "9.9.9"),
}


@pytest.mark.parametrize("change", ENVIRONMENT)
def test_a_changed_environment_is_a_miss(project, cache, runs, monkeypatch, change):
    _gen(cache)
    ENVIRONMENT[change](monkeypatch)
    _gen(cache)
    assert len(runs) == 2
    _gen(cache)
    assert len(runs) == 2


def test_an_upgraded_distribution_is_a_miss(
    project, cache, runs, tmp_path, monkeypatch
):
    site = tmp_path / "site"
    (site / "black-26.1.0.dist-info").mkdir(parents=True)
    monkeypatch.setattr(sys, "path", [*sys.path, str(site)])
    _gen(cache)
    (site / "black-26.1.0.dist-info").rename(site / "black-26.2.0.dist-info")
    _gen(cache)
    assert len(runs) == 2


def test_generator_fingerprint_covers_modules_and_templates(tmp_path, monkeypatch):
    names = {p.name for p in cache_mod._generator_files()}
    assert {
        "parse.py",
        "plan.py",
        "render.py",
        "fmt.py",
        "workflow.py.j2",
        "statements.j2",
    } <= names
    copies = []
    for path in cache_mod._generator_files():
        copy = tmp_path / path.parent.name / path.name
        copy.parent.mkdir(exist_ok=True)
        copy.write_bytes(path.read_bytes())
        copies.append(copy)
    monkeypatch.setattr(cache_mod, "_generator_files", lambda: copies)
    before = cache_mod._generator()
    template = next(p for p in copies if p.name == "workflow.py.j2")
    template.write_bytes(template.read_bytes() + b" ")
    assert cache_mod._generator() != before


def test_errors_are_not_cached(project, cache, runs):
    _write(
        project / "flow.py",
        FLOW.replace("self.next(self.end)", "self.next(self.missing)"),
    )
    for _ in range(2):
        with pytest.raises(CodegenError, match="missing"):
            _gen(cache)
    assert len(runs) == 2 and not _entries(cache)
    _write(project / "flow.py", FLOW)
    assert _gen(cache) == _gen(None)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"[]",
        b"\xff\xfe",
        b'{"format": 1}',
        "json:unknown check kind",  # e.g. ["unlink", path, ...] must never be called
        "json:file name outside the output dir",
        "json:a check that raises",  # resolving a symlink loop
    ],
)
def test_corrupt_entries_are_misses(project, cache, runs, content):
    good = _gen(cache)
    [entry_file] = _entries(cache)
    entry = json.loads(entry_file.read_bytes())
    victim = project / "victim.txt"
    victim.write_text("keep me")
    if content == "json:unknown check kind":
        entry["checks"].append(["unlink", str(victim), True])
        content = json.dumps(entry).encode()
    elif content == "json:a check that raises":
        (project / "loop").symlink_to("loop")
        entry["checks"].insert(0, ["resolve", str(project / "loop"), "?"])
        content = json.dumps(entry).encode()
    elif content == "json:file name outside the output dir":
        entry["files"].append(["../escaped.py", "x = 1\n"])
        content = json.dumps(entry).encode()
    entry_file.write_bytes(content)
    assert _gen(cache) == good and len(runs) == 2
    assert victim.read_text() == "keep me"
    assert _gen(cache) == good and len(runs) == 2, "the entry was rewritten"


def test_unwritable_cache_still_generates(project, tmp_path, runs):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    assert _gen(Cache(blocker)) == _gen(None)


def test_untracked_file_system_access_is_not_stored(tmp_path):
    cache = Cache(tmp_path / "cache")
    data = tmp_path / "data.txt"
    data.write_text("x")

    def stats(track):
        track(data).stat()
        return {"a.py": "a = 1\n"}

    def reads_twice_while_it_changes(track):
        first = track(data).read_bytes()
        data.write_text("y")
        return {"a.py": f"a = {first!r} + {track(data).read_bytes()!r}\n"}

    for produce in (stats, reads_twice_while_it_changes):
        assert cache.run({"case": produce.__name__}, produce)
    assert not _entries(cache)

    def reads(track):
        return {"a.py": f"a = {track(data).read_text()!r}\n"}

    assert cache.run({"case": "reads"}, reads) == {"a.py": "a = 'y'\n"}
    assert len(_entries(cache)) == 1


@pytest.mark.parametrize(
    "content", [b"a\r\nb\rc\n", b"\xef\xbb\xbfbom\n", b"\xff bad utf-8\n", None]
)
def test_tracked_paths_read_like_plain_paths(tmp_path, content):
    path = tmp_path / "f.py"
    if content is not None:
        path.write_bytes(content)
    tracked = cache_mod._Recorder().track(path)

    def outcome(p: Path):
        try:
            return p.read_text(encoding="utf-8"), p.read_bytes()
        except (OSError, UnicodeDecodeError) as exc:
            return type(exc), str(exc)

    assert outcome(tracked) == outcome(path)


def test_cache_location_and_switch(monkeypatch, tmp_path):
    for name in (
        "MF_TEMPORAL_CODEGEN_NO_CACHE",
        "MF_TEMPORAL_CODEGEN_CACHE_DIR",
        "XDG_CACHE_HOME",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert folder() == tmp_path / "home" / ".cache" / "mf-temporal-codegen"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert folder() == tmp_path / "home" / ".cache" / "mf-temporal-codegen"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert folder() == tmp_path / "xdg" / "mf-temporal-codegen"
    monkeypatch.setenv("MF_TEMPORAL_CODEGEN_CACHE_DIR", str(tmp_path / "explicit"))
    assert Cache.from_env().root == tmp_path / "explicit"
    assert template_cache(jinja2).directory.startswith(str(tmp_path / "explicit"))
    monkeypatch.setenv("MF_TEMPORAL_CODEGEN_NO_CACHE", "1")
    assert Cache.from_env() is None and template_cache(jinja2) is None


# ---- the CLI in a fresh interpreter -------------------------------------------------

PROBE = """
import json, sys
from mf_temporal_codegen.cli import main
code = main(sys.argv[1:])
watched = ("metaflow", "temporalio", "mf_temporal_codegen.runtime", "libcst", "black", "jinja2")
print("LOADED " + json.dumps([w for w in watched if w in sys.modules]), file=sys.stderr)
sys.exit(code)
"""
HEAVY = ["libcst", "black", "jinja2"]


def _cli(args, cache_dir: Path | None, cwd: Path = ROOT, seed: str = "0"):
    """(exit code, stdout, stderr, modules loaded) of one CLI run in a fresh interpreter."""
    env = {**os.environ, "PYTHONHASHSEED": seed}
    env.pop("MF_TEMPORAL_CODEGEN_NO_CACHE", None)
    if cache_dir is None:
        env["MF_TEMPORAL_CODEGEN_NO_CACHE"] = "1"
    else:
        env["MF_TEMPORAL_CODEGEN_CACHE_DIR"] = str(cache_dir)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    *err, loaded = done.stderr.splitlines(keepends=True)
    assert loaded.startswith("LOADED "), done.stderr
    return (
        done.returncode,
        done.stdout,
        "".join(err),
        json.loads(loaded[len("LOADED ") :]),
    )


def _tree(folder: Path) -> dict[str, bytes]:
    return (
        {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
        if folder.exists()
        else {}
    )


def test_cli_hit_is_identical_and_loads_nothing_heavy(tmp_path):
    flows = ["examples/inherited.py", "examples/nested_foreach.py"]
    cache_dir, out = tmp_path / "cache", tmp_path / "out"
    results = {}
    for name, where in (("uncached", None), ("miss", cache_dir), ("hit", cache_dir)):
        shutil.rmtree(out, ignore_errors=True)
        code, stdout, stderr, loaded = _cli([*flows, "-o", out], where)
        assert code == 0, stderr
        results[name] = (stdout, stderr, _tree(out))
        # the generate path never imports Metaflow, Temporal or the runtime
        assert loaded == (HEAVY if name != "hit" else []), name
    assert results["uncached"] == results["miss"] == results["hit"]
    assert len(results["hit"][2]) == 4
    # --check / --diff on a hit: same output and exit codes as uncached
    (out / "nested_foreach_flow_workflow.py").write_text("# stale\n")
    for mode, expected in (("--check", 1), ("--diff", 0)):
        uncached = _cli([*flows, "-o", out, mode], None)
        hit = _cli([*flows, "-o", out, mode], cache_dir)
        assert uncached[:3] == hit[:3] and hit[0] == expected
        assert (uncached[3], hit[3]) == (HEAVY, [])
        assert "-# stale" in hit[1]


def test_cli_bad_input_behaves_the_same_with_and_without_cache(tmp_path):
    bad = ROOT / "tests" / "bad_inputs" / "join_arity.py"
    cache_dir, out = tmp_path / "cache", tmp_path / "out"
    # a good flow first, then a bad one: nothing may be written
    args = ["examples/hello.py", bad, "-o", out]
    runs = [_cli(args, None), _cli(args, cache_dir), _cli(args, cache_dir)]
    assert runs[0][0] == 2 and "error:" in runs[0][2]
    assert runs[0][:3] == runs[1][:3] == runs[2][:3]
    assert not out.exists() and not list(cache_dir.glob("generated/*.json"))


def test_cache_entries_are_deterministic_across_hash_seeds(tmp_path):
    entries = []
    for seed in ("0", "1", "4242"):
        cache_dir = tmp_path / f"cache-{seed}"
        code, _, stderr, _ = _cli(
            ["examples/decorated.py", "-o", tmp_path / "out"], cache_dir, seed=seed
        )
        assert code == 0, stderr
        entries.append(_tree(cache_dir / "generated"))
    assert entries[0] == entries[1] == entries[2] and len(entries[0]) == 1


def test_concurrent_runs_share_the_cache_safely(tmp_path):
    cache_dir, out = tmp_path / "cache", tmp_path / "out"
    env = {**os.environ, "MF_TEMPORAL_CODEGEN_CACHE_DIR": str(cache_dir)}
    env.pop("MF_TEMPORAL_CODEGEN_NO_CACHE", None)
    argv = [
        sys.executable,
        "-m",
        "mf_temporal_codegen",
        "examples/foreach.py",
        "-o",
        out,
        "--diff",
    ]
    procs = [
        subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert (
        all(o == outputs[0] for o in outputs) and outputs[0][2] == 0 and outputs[0][0]
    )
    assert [p.name for p in (cache_dir / "generated").iterdir()] == [
        p.name for p in _entries(Cache(cache_dir))
    ]
    code, stdout, _, loaded = _cli(
        ["examples/foreach.py", "-o", out, "--diff"], cache_dir
    )
    assert (code, stdout.encode(), loaded) == (0, outputs[0][0], [])
