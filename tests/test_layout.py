"""The architecture rules of the tree, checked over the packages' ASTs (README "Code map").

- Layers: imports run one way. ``models`` <- ``export`` <- ``streams.contracts`` (with
  ``streams.settings`` and ``streams.metrics``) <- ``streams.channels`` / ``streams.pipeline`` <-
  ``streams.runtime`` <- ``streams.jobs`` / ``streams.cli``. ``infra`` (dev tooling the jobs drive)
  imports only the contracts, the settings and itself. Inside ``models``: ``data``,
  ``artifacts``, ``heap`` <- ``sid`` <- ``recall``, ``rank``, ``i2i`` <- ``coldstart``.
- No import cycle between modules (imports inside functions and under TYPE_CHECKING count too).
- An import inside a function is there only to keep a heavy optional dependency lazy, and says
  so: a ``# lazy:`` comment on its line, or on the line above a block of such imports.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "export", "streams", "infra")

# (module prefix, rank): a module may import modules of its own rank or below.
RANKS = (
    ("models.data", 0), ("models.artifacts", 0), ("models.heap", 0),
    ("models.sid", 1),
    ("models.recall", 2), ("models.rank", 2), ("models.i2i", 2),
    ("models.coldstart", 3),
    ("models", 3),
    ("export", 4),
    ("streams.contracts", 5), ("streams.settings", 5), ("streams.metrics", 5),
    ("streams.channels", 6), ("streams.pipeline", 6),
    ("streams.runtime", 7),
    ("infra", 8),
    ("streams.jobs", 9), ("streams.cli", 9),
    ("streams", 9),
)
# infra is tooling beside the stream, not above it: it sees only the contracts
INFRA_MAY_IMPORT = ("infra", "streams.contracts", "streams.settings")


@dataclass(frozen=True)
class Edge:
    source: str  # importing module
    target: str  # imported module
    line: int
    inner: bool  # inside a function
    lazy_comment: bool


def rank(module: str) -> int:
    for prefix, r in RANKS:
        if module == prefix or module.startswith(prefix + "."):
            return r
    raise AssertionError(f"{module} is in no layer of RANKS")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(target: str, known: set[str]) -> str | None:
    """The project module ``target`` names (``from a.b import c``: a.b.c if it is a module)."""
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target or None


def _lazy(lines: list[str], lineno: int) -> bool:
    """A ``# lazy:`` comment on the line, or above the block of imports the line belongs to."""
    i = lineno - 1
    if "# lazy:" in lines[i]:
        return True
    while i > 0:
        i -= 1
        text = lines[i].strip()
        if text.startswith("# lazy:") or ("# lazy:" in text and "import" in text):
            return True
        if not (text.startswith(("from ", "import ")) or text.startswith(")")
                or text.endswith((",", "(")) or text == ""):
            return False
    return False


def edges_of(path: Path, name: str, known: set[str]) -> Iterator[Edge]:
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    inner_nodes = {id(n) for f in ast.walk(tree)
                   if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for n in ast.walk(f)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            if t.split(".")[0] not in PACKAGES:
                if id(node) in inner_nodes:  # a third-party or stdlib import in a function
                    yield Edge(name, t, node.lineno, True, _lazy(lines, node.lineno))
                continue
            mod = resolve(t, known)
            assert mod is not None, f"{name}:{node.lineno} imports unknown {t}"
            if mod != name:
                yield Edge(name, mod, node.lineno, id(node) in inner_nodes,
                           _lazy(lines, node.lineno))


def project_edges(root: Path = ROOT) -> list[Edge]:
    files = {module_name(p, root): p for pkg in PACKAGES for p in (root / pkg).rglob("*.py")}
    known = set(files)
    return [e for name, p in sorted(files.items()) for e in edges_of(p, name, known)]


def layer_violations(edges: list[Edge]) -> list[str]:
    out = []
    for e in edges:
        if e.target.split(".")[0] not in PACKAGES:
            continue
        if e.source.startswith("infra"):
            ok = e.target.startswith(INFRA_MAY_IMPORT)
        else:
            ok = rank(e.target) <= rank(e.source) and not (
                e.target.startswith("infra") and rank(e.source) < rank("streams.jobs"))
        if not ok:
            out.append(f"{e.source}:{e.line} imports {e.target}")
    return out


def cycles(edges: list[Edge]) -> list[list[str]]:
    graph: dict[str, set[str]] = {}
    for e in edges:
        if e.target.split(".")[0] in PACKAGES:
            graph.setdefault(e.source, set()).add(e.target)
    found, state = [], {}  # state: 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


@pytest.fixture(scope="module")
def edges() -> list[Edge]:
    return project_edges()


def test_imports_run_one_way(edges: list[Edge]) -> None:
    assert layer_violations(edges) == []


def test_no_import_cycles_between_modules(edges: list[Edge]) -> None:
    assert cycles(edges) == []


def test_imports_inside_functions_are_lazy_on_purpose(edges: list[Edge]) -> None:
    unmarked = [f"{e.source}:{e.line} {e.target}" for e in edges if e.inner and not e.lazy_comment]
    assert unmarked == []


def test_the_checks_catch_a_reverse_import_and_a_cycle(tmp_path: Path) -> None:
    """The rules above fail on the bugs they are named for (a fake tree with both)."""
    for name, body in {
        "models/__init__.py": "",
        "models/data/__init__.py": "",
        "models/data/dataset.py": "from streams.contracts.events import Id\n",
        "streams/__init__.py": "",
        "streams/contracts/__init__.py": "",
        "streams/contracts/events.py": "from streams.runtime.app import App\n",
        "streams/runtime/__init__.py": "",
        "streams/runtime/app.py": ("from streams.contracts.events import Id\n\n"
                                   "def f():\n    import models.data.dataset\n"),
        "export/__init__.py": "",
        "infra/__init__.py": "",
        "infra/embedded.py": "from streams.runtime.app import App\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    edges = project_edges(tmp_path)
    assert set(layer_violations(edges)) == {
        "models.data.dataset:1 imports streams.contracts.events",
        "streams.contracts.events:1 imports streams.runtime.app",
        "infra.embedded:1 imports streams.runtime.app"}
    assert any({"streams.contracts.events", "streams.runtime.app"} <= set(c) for c in cycles(edges))
    assert [e.line for e in edges if e.inner and not e.lazy_comment] == [4]
