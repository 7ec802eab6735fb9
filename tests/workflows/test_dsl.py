"""The workflow DSL: what a build function declares becomes a checked graph of JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from runs.workflows import MARKER, WorkflowBuildError, build_graph, workflow
from runs.workflows.graph import MissingReference, nodes_and_edges, resolve
from runs.workflows.loader import check_targets, load_workflow_file, subworkflow_cycle
from tests.workers import ROOT


def graph_of(fn):
    return build_graph(getattr(workflow(name="x")(fn), MARKER))


def steps_of(fn):
    return {s["id"]: s for s in graph_of(fn)["steps"]}


def test_references_are_data_and_make_dependencies():
    def build(wf):
        research = wf.task("research", "research-topic", input={"topic": wf.input("topic")})
        drafts = wf.map(
            "drafts",
            "write-draft",
            items=research.output("ideas"),
            input={"idea": wf.item(), "n": [wf.item("n")]},
            concurrency=4,
        )
        review = wf.approval("review", message="Publish?", after=[drafts], timeout_seconds=60)
        wf.sleep("cool-down", seconds=60, after=[review])
        publish = wf.task(
            "publish",
            "task:publish",
            input={"drafts": drafts.output()},
            after=["cool-down"],
            retries=2,
            timeout_seconds=600,
        )
        return {"published": publish.output()}

    graph = graph_of(build)
    steps = {s["id"]: s for s in graph["steps"]}
    assert steps["research"]["input"] == {"topic": {"$ref": "input", "path": "topic"}}
    assert steps["research"]["target"] == "task:research-topic"
    assert steps["drafts"]["items"] == {"$ref": "output", "step": "research", "path": "ideas"}
    assert steps["drafts"]["input"] == {
        "idea": {"$ref": "item"},
        "n": [{"$ref": "item", "path": "n"}],
    }
    assert steps["drafts"]["concurrency"] == 4
    assert steps["drafts"]["depends_on"] == ["research"]
    assert steps["review"]["depends_on"] == ["drafts"]
    assert steps["publish"]["depends_on"] == ["cool-down", "drafts"]
    assert steps["publish"]["retries"] == 2
    assert graph["output"] == {"published": {"$ref": "output", "step": "publish"}}
    json.dumps(graph)  # the whole graph is JSON
    assert [s["id"] for s in graph["steps"]] == [
        "research",
        "drafts",
        "review",
        "cool-down",
        "publish",
    ]


def test_steps_without_dependencies_come_first_and_graph_order_is_topological():
    def build(wf):
        wf.task("late", "b", after=["early2"])
        wf.task("early1", "a")
        wf.task("early2", "a")

    graph = graph_of(build)
    assert [s["id"] for s in graph["steps"]] == ["early1", "early2", "late"]
    assert nodes_and_edges(graph)["edges"] == [{"from": "early2", "to": "late"}]
    assert nodes_and_edges(graph)["nodes"][0] == {
        "id": "early1",
        "kind": "task",
        "target": "task:a",
        "name": "early1",
    }


def test_a_string_after_can_make_a_cycle_and_it_is_refused():
    def build(wf):
        a = wf.task("a", "x", after=["c"])
        b = wf.task("b", "x", after=[a])
        wf.task("c", "x", input={"v": b.output()})

    with pytest.raises(WorkflowBuildError, match="dependency cycle: a -> c -> b -> a"):
        graph_of(build)


@pytest.mark.parametrize(
    "body, message",
    [
        ("wf.task('a', 'x'); wf.task('a', 'y')", "duplicate step id 'a'"),
        ("wf.task('a', 'x', after=['nope'])", "after names unknown step 'nope'"),
        ("wf.task('a', 'x', input={'i': wf.item()})", "only meaningful in a map"),
        ("wf.task('a', 'x', trigger_rule='sometimes')", "trigger_rule must be one of"),
        ("wf.task('a', 'x', retries=-1)", "retries must be an integer of at least 0"),
        ("wf.task('a', 'x', colour='red')", "unknown option"),
        ("wf.sleep('s')", "exactly one of seconds, until"),
        ("wf.task('a', 'x', input={'when': object()})", "object is not JSON"),
        ("wf.task('a', 'workflow:x')", "use wf.workflow()"),
        ("1/0", "ZeroDivisionError while building the graph"),
        ("pass", "the workflow has no steps"),
        ("a = wf.task('a', 'x')\n    if a.output(): pass", "has no value while the graph is built"),
    ],
)
def test_build_errors_say_why(body, message):
    namespace: dict = {}
    exec(f"def build(wf):\n    {body}", namespace)
    with pytest.raises(WorkflowBuildError, match=message):
        graph_of(namespace["build"])


def test_when_unless_and_options_are_kept():
    def build(wf):
        check = wf.task("check", "x")
        wf.task("yes", "x", when=check.output("ok"), name="Say yes", continue_on_failure=True)
        wf.task("no", "x", unless=check.output("ok"), trigger_rule="all_done")
        wf.wait_for_event("ev", "paid", timeout_seconds=5)
        wf.workflow("sub", "other", input={"a": 1})

    steps = steps_of(build)
    assert steps["yes"]["when"] == {"$ref": "output", "step": "check", "path": "ok"}
    assert steps["yes"]["depends_on"] == ["check"]
    assert steps["yes"]["name"] == "Say yes" and steps["yes"]["continue_on_failure"] is True
    assert steps["no"]["unless"]["step"] == "check" and steps["no"]["trigger_rule"] == "all_done"
    assert steps["ev"]["event"] == "paid" and steps["ev"]["timeout_seconds"] == 5
    assert steps["sub"]["target"] == "workflow:other"


def test_resolve_follows_dotted_paths_and_names_what_is_missing():
    value = {"a": {"$ref": "output", "step": "s", "path": "items.1.name"}, "b": [{"$ref": "input"}]}
    outputs = {"s": {"items": [{"name": "x"}, {"name": "y"}]}}
    assert resolve(value, input={"k": 1}, outputs=outputs) == {"a": "y", "b": [{"k": 1}]}
    with pytest.raises(MissingReference) as info:
        resolve({"$ref": "output", "step": "s", "path": "items.5"}, input={}, outputs=outputs)
    assert info.value.path == "s.output.items.5"
    with pytest.raises(MissingReference):
        resolve({"$ref": "input", "path": "nope"}, input={}, outputs={})
    assert (
        resolve({"$ref": "item", "path": "n"}, input={}, outputs={}, item={"n": 3}, has_item=True)
        == 3
    )


def test_load_workflow_file_returns_json_and_reports_file_errors(tmp_path):
    good = tmp_path / "pipe.py"
    good.write_text(
        textwrap.dedent("""
        from runs.workflows import workflow

        @workflow(name="Pipe", input_schema={"type": "object"}, schedulable=True, timeout_seconds=60)
        def build(wf):
            a = wf.task("a", "echo")
            wf.workflow("b", "other", after=[a])
    """)
    )
    loaded = load_workflow_file(good, "pipe")
    assert loaded["name"] == "Pipe" and loaded["schedulable"] is True
    assert loaded["timeout_seconds"] == 60
    assert json.loads(json.dumps(loaded)) == loaded
    assert check_targets(loaded, {"echo"}, {"other"}) is None
    assert check_targets(loaded, {"echo"}, set()) == "step 'b': no workflow with id 'other'"
    assert check_targets(loaded, set(), {"other"}) == "step 'a': no task with id 'echo'"

    (tmp_path / "none.py").write_text("x = 1\n")
    with pytest.raises(ValueError, match="defines no workflow"):
        load_workflow_file(tmp_path / "none.py", "none")
    (tmp_path / "bad.py").write_text("def (:\n")
    with pytest.raises(ValueError, match="syntax error on line 1"):
        load_workflow_file(tmp_path / "bad.py", "bad")


def test_subworkflow_cycles_are_found():
    def d(*children):
        return {
            "graph": {"steps": [{"kind": "workflow", "target": f"workflow:{c}"} for c in children]}
        }

    defs = {"a": d("b"), "b": d("c"), "c": d("a"), "x": d()}
    assert subworkflow_cycle("a", defs) == ["a", "b", "c", "a"]
    assert subworkflow_cycle("x", defs) is None


def test_the_dsl_imports_nothing_from_django():
    code = (
        "import sys, runs.workflows, runs.workflows.loader, runs.workflows.graph;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
