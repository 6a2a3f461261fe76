"""The oracle: the graph built from libcst equals Metaflow's own FlowGraph."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from metaflow.flowspec import FlowSpec
from metaflow.graph import FlowGraph

from mf_temporal_codegen.graph import analyze
from mf_temporal_codegen.parse import load_flows

from helpers import EXAMPLE_FILES, EXAMPLES


def _metaflow_graph(flow_file, name):
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location(
            f"parity_{flow_file.stem}", flow_file
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLES))
    cls = getattr(module, name)
    assert issubclass(cls, FlowSpec)
    return FlowGraph(cls)


def _ours(node):
    step = node.step
    return {
        "type": step.kind,
        "out_funcs": list(step.next),
        "in_funcs": list(node.in_funcs),
        "foreach_param": step.foreach_var,
        "condition": step.condition,
        "switch_cases": dict(step.switch_cases),
        "matching_join": node.matching_join,
        "split_parents": list(node.split_parents),
        "is_inside_foreach": node.is_inside_foreach,
        "line": step.pos.line,
        "doc": step.doc,
    }


def _theirs(node):
    return {
        "type": node.type,
        "out_funcs": list(node.out_funcs),
        "in_funcs": list(node.in_funcs),
        "foreach_param": node.foreach_param,
        "condition": node.condition,
        "switch_cases": dict(node.switch_cases),
        "matching_join": node.matching_join,
        "split_parents": list(node.split_parents),
        "is_inside_foreach": node.is_inside_foreach,
        "line": node.func_lineno,
        "doc": node.doc,
    }


@pytest.mark.parametrize("flow_file", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_graph_matches_metaflow(flow_file):
    for flow in load_flows(flow_file):
        graph = analyze(flow)
        reference = _metaflow_graph(flow_file, flow.name)
        assert (graph.flow.start, graph.flow.end) == (
            reference.start_step,
            reference.end_step,
        )
        assert sorted(graph.nodes) == sorted(reference.nodes)
        for name, node in graph.nodes.items():
            assert _ours(node) == _theirs(reference[name]), name
