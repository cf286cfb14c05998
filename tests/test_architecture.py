"""The layers hold: import-linter's contracts pass on the tree and fail on a wrong-way import; no
module imports another package's private names; no import cycle between modules; no module or
function of the library packages past a loose size ceiling (named exceptions only)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("contract", "features", "scoring", "simulator", "training", "serving", "monitoring",
            "claimradar")  # fmt: skip


def _lint(root: Path) -> subprocess.CompletedProcess:
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(lint), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory) -> Path:
    dst = tmp_path_factory.mktemp("layers")
    for name in PACKAGES:
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", dst / "pyproject.toml")
    return dst


def test_the_tree_keeps_its_layers(tree_copy):
    done = _lint(tree_copy)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "bad_import"),
    [
        ("training/models.py", "import serving.api"),  # training never depends on serving
        ("scoring/ranking.py", "import training.train"),  # scoring sits below training
        ("contract/schema.py", "import features.registry"),  # the contract is the bottom
        ("features/rules.py", "import claimradar.settings"),  # libraries never read settings
    ],
)
def test_a_wrong_way_import_fails_the_lint(tree_copy, tmp_path, module, bad_import):
    bad = tmp_path / "tree"
    shutil.copytree(tree_copy, bad)
    path = bad / module
    path.write_text(path.read_text() + f"\n{bad_import}  # deliberately wrong\n")
    done = _lint(bad)
    assert done.returncode != 0
    assert re.search(r"Contracts: \d+ kept, [1-9]\d* broken", done.stdout), done.stdout[-2000:]


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for p in (ROOT / pkg).rglob("*.py"):
            rel = p.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out[".".join(parts)] = p
    return out


IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import\s+([^\n#]+)|import\s+([\w.]+))", re.M)


def test_no_package_imports_another_packages_private_names():
    found = []
    for name, path in _modules().items():
        for m in IMPORT.finditer(path.read_text()):
            source, names, plain = m.group(1), m.group(2), m.group(3)
            target = source or plain
            if target.split(".")[0] not in PACKAGES or target.split(".")[0] == name.split(".")[0]:
                continue
            imported = [n.strip(" ()").split(" as ")[0] for n in (names or "").split(",")]
            if any(part.startswith("_") and part != "__future__" for part in target.split(".")):
                found.append(f"{name}: {m.group(0).strip()}")
            found += [f"{name}: {n}" for n in imported if n.startswith("_") and n != "__version__"]
    assert not found, found


def test_no_import_cycle_between_modules():
    """Tarjan over the module graph (function-level imports included, as grimp sees them)."""
    import grimp

    graph = grimp.build_graph(*PACKAGES)
    mods = sorted(graph.modules)
    edges = {m: graph.find_modules_directly_imported_by(m) & set(mods) for m in mods}
    # a package's __init__ re-exporting its modules is not a cycle of logic
    for m in mods:
        edges[m] = {t for t in edges[m] if not m.startswith(t + ".")}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for m in mods:
        if m not in index:
            visit(m)
    assert not cycles, cycles


# -- sizes: a loose ceiling on the library packages' modules and functions, so a module or a
# function that keeps growing is split before it is hard to split
SIZED = ("contract", "features", "scoring", "training", "serving", "monitoring")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 100
# Offenders that stay for now, each with its reason; an entry is removed once it is split.
SIZE_ALLOWED = {
    "features/registry.py": "a data table: one _add(...) entry per model feature, texts vi/en",
    "serving/api.py:create_app": "every route of the scoring API in one factory (to APIRouters)",
}


def _sizes() -> dict[str, int]:
    import ast

    out = {}
    for pkg in SIZED:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            text = path.read_text()
            out[rel] = len(text.splitlines())
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    key = f"{rel}:{node.name}"
                    out[key] = max(out.get(key, 0), node.end_lineno - node.lineno + 1)
    return out


def test_no_module_or_function_grows_past_the_ceiling():
    sizes = _sizes()
    over = {
        k: n for k, n in sizes.items() if n > (MAX_FUNCTION_LINES if ":" in k else MAX_MODULE_LINES)
    }
    unexpected = [f"{k}: {n} lines" for k, n in over.items() if k not in SIZE_ALLOWED]
    assert not unexpected, (
        f"split these (or allow them in SIZE_ALLOWED with a reason): {unexpected}"
    )
    stale = [k for k in SIZE_ALLOWED if k not in over]
    assert not stale, f"no longer over the ceiling: remove from SIZE_ALLOWED: {stale}"
