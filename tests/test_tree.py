"""The repository stands on its own: its code and documents cite no file outside it."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_no_citation_of_documents_outside_the_tree():
    cited = []
    for base in ("src", "docs", "benchmarks", "tests"):
        for p in (ROOT / base).rglob("*"):
            if p.suffix in (".py", ".md") and p.name != Path(__file__).name:
                text = p.read_text(encoding="utf-8")
                if "SPEC §" in text or "shared/SPEC" in text:
                    cited.append(str(p.relative_to(ROOT)))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert not cited and "SPEC" not in readme, cited
