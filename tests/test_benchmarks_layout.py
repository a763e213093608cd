"""benchmarks/ holds tools, each run by a test, and benchmarks/studies/ one-off studies, each
listed with the finding and the log it produced; nothing there imports from tests/."""

import ast
import re

from conftest import REPO

BENCHMARKS = REPO / "benchmarks"
STUDIES = BENCHMARKS / "studies"


def imported_modules(path):
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_nothing_under_benchmarks_imports_from_tests():
    test_modules = {p.stem for p in (REPO / "tests").glob("*.py")} | {"tests"}
    scripts = sorted(BENCHMARKS.rglob("*.py"))
    assert scripts
    for script in scripts:
        tops = {name.split(".")[0] for name in imported_modules(script)}
        assert not tops & test_modules, (script, tops & test_modules)
        assert '"tests"' not in script.read_text(encoding="utf-8"), script  # no sys.path to it


def test_every_tool_at_the_top_of_benchmarks_is_run_by_a_test():
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "tests").glob("test_*.py"))
    tools = sorted(p.name for p in BENCHMARKS.iterdir() if p.suffix in (".py", ".sh"))
    assert {"bench.py", "reproduce.py", "gpu_check.sh", "optimizers.py"} <= set(tools)
    for tool in tools:
        assert f'"benchmarks" / "{tool}"' in tests, f"no test runs benchmarks/{tool}"


def test_every_study_is_listed_with_a_log_that_exists():
    readme = (STUDIES / "README.md").read_text(encoding="utf-8")
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(\w+\.py)` \|.*$", readme, re.M)}
    assert sorted(rows) == sorted(p.name for p in STUDIES.glob("*.py"))
    for study, row in rows.items():
        links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", row)
        assert any("/docs/logs/" in link for link in links), study
        for link in links:
            assert (STUDIES / link).resolve().is_file(), (study, link)
