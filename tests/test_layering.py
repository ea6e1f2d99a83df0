"""The layers of the package: what imports what, and what a login node's commands load."""

import ast
import json
import resource
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_module

from evalrunner.folders import RUNTIME_KEYS

PACKAGE = Path(__file__).parents[1] / "evalrunner"
README = Path(__file__).parents[1] / "README.md"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _runtime_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, in functions too, but not under `if TYPE_CHECKING:` (never run)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _runtime_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state and (found := walk(n)):
                return found
        state[m] = 2
        path.pop()
        return None

    for m in sorted(graph):
        if m not in state and (found := walk(m)):
            return found
    return None


def test_the_import_graph_of_the_package_has_no_circle() -> None:
    graph = _graph()

    cycle = _cycle(graph)

    assert "evalrunner.report.intervals" in graph["evalrunner.collect"]  # the scan sees imports at all
    assert cycle is None, " -> ".join(cycle or [])


def test_the_collector_report_and_metrics_import_neither_torch_nor_a_dataset() -> None:
    code = ("import sys, json; import evalrunner, evalrunner.collect, evalrunner.report.__main__, evalrunner.metrics;"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')"
            " or m == 'evalrunner.job' or m.startswith(('evalrunner.datasets', 'evalrunner.models')))))")

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert json.loads(proc.stdout) == []


def test_the_collectors_help_takes_well_under_a_second_of_cpu() -> None:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)

    proc = subprocess.run([sys.executable, "-m", "evalrunner.collect", "--help"], capture_output=True, text=True)

    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert proc.returncode == 0 and "SWEEP_DIR" in proc.stdout
    assert cpu < 1.0, f"{cpu:.2f} s of CPU to print the collector's help"  # 6.6 s when it loaded torch and models


def test_the_lazy_package_still_offers_its_public_names() -> None:
    import evalrunner

    assert callable(evalrunner.vqa_accuracy) and callable(evalrunner.cider)
    assert sorted(evalrunner.__all__) == ["cider", "run", "vqa_accuracy"]


def test_only_the_atomic_writer_renames_files_into_place() -> None:
    writers = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                     if any(s in p.read_text() for s in ("os.replace(", "mkstemp(", ".rename(")))

    assert writers == ["atomic.py"]


def test_hydra_and_the_readme_take_the_speed_only_keys_from_the_one_list() -> None:
    with initialize_config_module(config_module="evalrunner.conf", version_base="1.3"):
        cfg = compose(config_name="config", return_hydra_config=True)
    sentence = next(line for line in README.read_text().splitlines() if line.startswith("Speed-only keys:"))

    assert list(cfg.hydra.job.config.override_dirname.exclude_keys) == list(RUNTIME_KEYS)
    assert sentence.split("`")[1::2] == list(RUNTIME_KEYS)  # the backticked names, in the list's order


def test_the_configs_compose_without_importing_the_schema_module_first() -> None:
    code = ("from hydra import compose, initialize_config_module\n"
            "with initialize_config_module(config_module='evalrunner.conf', version_base='1.3'):\n"
            "    cfg = compose(config_name='config', overrides=['dataset=vqav2'], return_hydra_config=True)\n"
            "print(cfg.dataset.vqa_variant, ','.join(cfg.hydra.job.config.override_dirname.exclude_keys))\n")

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["official", ",".join(RUNTIME_KEYS)]
