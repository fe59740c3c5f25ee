"""The repository stands on its own: its code and documents cite no file outside it."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_no_citation_of_documents_outside_the_tree():
    cited = []
    for base in ("src", "docs", "benchmarks", "studies", "tests"):
        for p in (ROOT / base).rglob("*"):
            if p.suffix in (".py", ".md") and p.name != Path(__file__).name:
                text = p.read_text(encoding="utf-8")
                if "SPEC §" in text or "shared/SPEC" in text:
                    cited.append(str(p.relative_to(ROOT)))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert not cited and "SPEC" not in readme, cited


SRC = ROOT / "src"
PACKAGE = SRC / "stylegan"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports, at module level or inside functions, resolved to modules
    (``from a.b import c`` is module ``a.b.c`` when that is a module, else ``a.b``). Imports under
    ``if TYPE_CHECKING:`` count too: a module that names another in its annotations depends on it as a reader
    does, and a circle through annotations is a circle."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for a in node.names:
                found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base)
    return {m for m in found if m in modules}


def test_no_import_cycle_among_the_package_modules():
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: _imports(p, set(paths)) - {m} for m, p in paths.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(" -> ".join(path[path.index(n):] + [n]))
            elif n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_cycle_finder_finds_a_cycle(tmp_path):
    pkg = tmp_path / "stylegan"
    pkg.mkdir()
    (pkg / "a.py").write_text("from stylegan.b import f\n")
    (pkg / "b.py").write_text("def f():\n    from stylegan import a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from stylegan.a import f\n")
    mods = {"stylegan.a", "stylegan.b", "stylegan.c", "stylegan"}
    global SRC
    old, SRC = SRC, tmp_path
    try:
        assert _imports(pkg / "a.py", mods) == {"stylegan.b"}
        assert _imports(pkg / "b.py", mods) == {"stylegan.a"}
        assert _imports(pkg / "c.py", mods) == {"stylegan.a"}  # annotation-only imports count
    finally:
        SRC = old


#: The packages whose functions must stay short (≤ MAX_FUNCTION_LINES from ``def`` to the last line) unless
#: their docstring says why ("Long because ...").
SHORT_FUNCTION_PACKAGES = ("training", "serve", "interop")
MAX_FUNCTION_LINES = 60


def test_functions_in_training_serve_interop_are_short():
    import ast

    long = []
    for package in SHORT_FUNCTION_PACKAGES:
        for p in (PACKAGE / package).rglob("*.py"):
            for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    n = node.end_lineno - node.lineno + 1
                    if n > MAX_FUNCTION_LINES and "Long because" not in (ast.get_docstring(node) or ""):
                        long.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, "functions over 60 lines without a reason:\n" + "\n".join(long)


def test_design_sections_cited_by_docstrings_exist():
    """Docstrings cite the formulas they implement as "docs/design.md §N.M"; each such section exists."""
    import re

    design = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    sections, chapter = set(), None
    for line in design.split("\n"):
        if m := re.match(r"## (\d+)\. ", line):
            chapter = m.group(1)
        elif chapter and (m := re.match(r"(\d+)\. \*\*", line)):
            sections.add(f"{chapter}.{m.group(1)}")
    cited = {}
    for p in PACKAGE.rglob("*.py"):
        for m in re.finditer(r"docs/design\.md (§[\d.,–§ ]+\d)", p.read_text(encoding="utf-8")):
            for part in re.findall(r"\d+\.\d+(?:–\d+\.\d+)?", m.group(1)):
                a, _, b = part.partition("–")
                for sec in ([a, b] if b else [a]):
                    cited.setdefault(sec, p.name)
    assert len(cited) >= 20
    missing = {s: f for s, f in cited.items() if s not in sections}
    assert not missing, missing


#: Floors that point down: a package on the left imports none of those on the right (at module level or in
#: functions). The floor-1 module ``stylegan.files`` imports nothing of the package at all.
FORBIDDEN_IMPORTS = {
    "stylegan.files": ("stylegan",),
    "stylegan.nn": ("stylegan.networks", "stylegan.metrics", "stylegan.training", "stylegan.tools",
                    "stylegan.serve", "stylegan.cli"),
    "stylegan.networks": ("stylegan.metrics", "stylegan.training", "stylegan.tools", "stylegan.serve",
                          "stylegan.cli"),
    "stylegan.metrics": ("stylegan.training", "stylegan.tools", "stylegan.serve", "stylegan.cli"),
    "stylegan.checkpoint": ("stylegan.metrics", "stylegan.training", "stylegan.tools", "stylegan.cli"),
    "stylegan.cpu": ("stylegan.nn", "stylegan.networks", "stylegan.metrics", "stylegan.training", "stylegan.tools",
                     "stylegan.serve", "stylegan.cli", "stylegan.data", "stylegan.interop"),
}


def test_floors_point_down():
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    wrong = []
    for m, p in sorted(paths.items()):
        for floor, forbidden in FORBIDDEN_IMPORTS.items():
            if m != floor and not m.startswith(floor + "."):
                continue
            for imported in sorted(_imports(p, set(paths))):
                if any(imported == f or imported.startswith(f + ".") for f in forbidden):
                    wrong.append(f"{m} imports {imported}")
    assert not wrong, "imports that point up:\n" + "\n".join(wrong)
