"""The layer picture of ``pipeline/__init__.py``, enforced: every import in the library and the stages
is walked with ``ast`` (function-level and TYPE_CHECKING imports included) and checked against it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Layer → the layers (first component under ``pipeline.``) it may import. The face may import all.
ALLOWED: dict[str, set[str]] = {
    "core": {"core", "resources"},
    "archive": {"core", "archive"},
    "science": {"core", "archive", "science"},
    "orchestration": {"core", "archive", "science", "orchestration"},
    "simulate": {"core", "science", "simulate"},
    "resources": set(),
}
#: The face: the ``owl`` command and the HTTP service; each may import every layer.
FACE = {"", "cli", "service"}
#: Third-party packages that belong to the face only.
FACE_ONLY = {"click", "rich", "starlette", "uvicorn", "jinja2"}


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def module_name(path: Path, root: Path = REPO) -> str:
    mod = ".".join(path.relative_to(root).with_suffix("").parts)
    return mod.removesuffix(".__init__")


def imports(path: Path, root: Path = REPO) -> list[tuple[int, str]]:
    """(line, absolute module) for every import statement in the file."""
    mod = module_name(path, root)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            out.append((node.lineno, target))
            if target == "pipeline":  # ``from pipeline import science`` names a layer
                out += [(node.lineno, f"pipeline.{a.name}") for a in node.names]
    return out


def violations(paths: list[Path], allowed_for, root: Path = REPO) -> list[str]:
    """``file:line imports X`` for every import its layer may not make."""
    bad = []
    for path in paths:
        allowed = allowed_for(path, root)
        if allowed is None:
            continue
        where = path.relative_to(root)
        for line, target in imports(path, root):
            top = target.split(".")[0]
            if top == "pipeline" and target != "pipeline" and layer_of(target) not in allowed:
                bad.append(f"{where}:{line} imports {target}")
            if top in FACE_ONLY and not allowed & FACE:
                bad.append(f"{where}:{line} imports {target} (a face-only package)")
    return bad


def library_rule(path: Path, root: Path = REPO) -> set[str] | None:
    layer = layer_of(module_name(path, root))
    if layer in FACE:
        return None
    if layer not in ALLOWED:
        pytest.fail(f"{path.relative_to(REPO)}: package pipeline.{layer} is in no layer; add it to the picture")
    return ALLOWED[layer]


def test_every_library_import_follows_the_layer_picture():
    assert violations(sorted((REPO / "pipeline").rglob("*.py")), library_rule) == []


def test_stages_never_import_the_face():
    everything_but_face = set(ALLOWED)  # neither cli nor service
    assert violations(sorted((REPO / "stages").glob("*.py")), lambda _p, _r: everything_but_face) == []


def test_every_owl_command_lives_under_pipeline_cli():
    from pipeline.cli import COMMANDS

    outside = {name: target for name, (target, _help) in COMMANDS.items() if not target.startswith("pipeline.cli.")}
    assert outside == {}


def test_the_checker_catches_a_wrong_direction(tmp_path):
    """The walk is not vacuous: a core module importing the face lazily, and click, are both reported."""
    probe = tmp_path / "pipeline" / "core" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("def f():\n    from pipeline.cli.common import site_option\n    import click\n")
    assert violations([probe], library_rule, root=tmp_path) == [
        "pipeline/core/probe.py:2 imports pipeline.cli.common",
        "pipeline/core/probe.py:3 imports click (a face-only package)"]


def module_graph() -> dict[str, set[str]]:
    """Module → the owlpipe modules it imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    files = {module_name(p): p for p in (REPO / "pipeline").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module in files and not node.level:
                subs = {f"{node.module}.{a.name}" for a in node.names} & files.keys()
                deps |= subs or {node.module}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names} & files.keys()
        graph[mod] = deps - {mod}
    return graph


def test_no_module_imports_itself_in_a_circle():
    graph, cycles, state = module_graph(), [], {}

    def visit(mod: str, trail: list[str]) -> None:
        state[mod] = "open"
        for dep in sorted(graph.get(mod, ())):
            if state.get(dep) == "open":
                cycles.append(" -> ".join([*trail[trail.index(dep):], dep]))
            elif dep not in state:
                visit(dep, [*trail, dep])
        state[mod] = "done"

    for mod in sorted(graph):
        if mod not in state:
            visit(mod, [mod])
    assert cycles == []
