"""The house rules, checked on the source: each layer only looks down, no import cycles, one file per method,
and a fast ``erasekit --help`` that loads none of the heavy libraries."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import erasekit

SOURCE = Path(erasekit.__file__).parent

# lowest first; a package may import its own layer and the layers before it
LAYERS = ["core", "data", "models", "training", "sisa", "methods", "audit", "report", "pipelines", "ledger", "cli"]
METHOD_PACKAGES = ("unlearn", "concepts", "features", "generative")
FORBIDDEN_FOR_METHODS = ("audit", "report", "pipelines", "ledger", "cli")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every erasekit module a file imports, at module level or inside functions."""
    tree = ast.parse(path.read_text(), str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("erasekit")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if not base.startswith("erasekit"):
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(
                    candidate
                    if (SOURCE.parent / candidate.replace(".", "/")).with_suffix(".py").exists()
                    or (SOURCE.parent / candidate.replace(".", "/")).is_dir()
                    else base
                )
    return found


def _graph() -> dict[str, set[str]]:
    return {_module_name(path): _imports(path) for path in SOURCE.rglob("*.py") if "migrations" not in path.parts}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2 or parts[1] in ("_version", "__main__"):
        return None  # the package root, the version and the entry point sit outside the layers
    return "methods" if parts[1] in METHOD_PACKAGES else parts[1]


def test_every_module_belongs_to_a_layer():
    unknown = {m for m in _graph() if _layer(m) is not None and _layer(m) not in LAYERS}
    assert not unknown, f"modules outside the layers {LAYERS}: {sorted(unknown)}"


def test_each_layer_only_imports_layers_below_it():
    graph = _graph()
    upward = []
    for module, imported in graph.items():
        here = _layer(module)
        for target in imported:
            there = _layer(target)
            if here is None or there is None:
                continue
            if LAYERS.index(there) > LAYERS.index(here):
                upward.append(f"{module} → {target}")
    assert not upward, "imports that look up a layer:\n" + "\n".join(sorted(upward))


def test_method_packages_import_no_pipeline_report_cli_or_each_other():
    graph = _graph()
    bad = []
    for module, imported in graph.items():
        parts = module.split(".")
        if len(parts) < 2 or parts[1] not in METHOD_PACKAGES:
            continue
        for target in imported:
            family = target.split(".")[1] if "." in target else ""
            if family in FORBIDDEN_FOR_METHODS or (family in METHOD_PACKAGES and family != parts[1]):
                bad.append(f"{module} → {target}")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycles():
    graph = _graph()
    edges = {m: {t for t in targets if t in graph and t != m} for m, targets in graph.items()}
    # a package's __init__ importing its own submodules is how packages work, not a cycle between modules
    for module in edges:
        edges[module] = {t for t in edges[module] if not t.startswith(module + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start)):
            pytest.fail("import cycle: " + " → ".join(cycle))


def test_the_checks_can_fail(tmp_path, monkeypatch):
    """Positive control: a method module that imports the report layer, and a cycle, are both caught."""
    fake = tmp_path / "erasekit"
    for package in ("unlearn", "report"):
        (fake / package).mkdir(parents=True)
        (fake / package / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "unlearn" / "bad.py").write_text("from erasekit.report import render\n")
    (fake / "report" / "render.py").write_text("import erasekit.unlearn.bad\n")
    monkeypatch.setattr(sys.modules[__name__], "SOURCE", fake)
    with pytest.raises(AssertionError, match="unlearn.bad → erasekit.report"):
        test_method_packages_import_no_pipeline_report_cli_or_each_other()
    with pytest.raises(pytest.fail.Exception, match="import cycle"):
        test_no_import_cycles()


@pytest.mark.parametrize(
    "package, registry",
    [("unlearn", "METHODS"), ("concepts", "ERASERS"), ("features", "SELECTORS"), ("generative", "DIFFUSION_METHODS")],
)
def test_every_method_file_registers_itself(package, registry):
    """A new method is one file: the package imports every module in it, and each method module registers a name."""
    module = importlib.import_module(f"erasekit.{package}")
    records = getattr(module, registry)
    infrastructure = {
        "base",
        "encoding",
        "layers",
        "sklearn",
        "gates",
        "linear_edit",
        "tabular",
        "text_edit",
        "token_projection",
        "testbed_files",
    }
    for info in pkgutil.iter_modules(module.__path__):
        if info.name in infrastructure:
            continue
        source = (Path(module.__path__[0]) / f"{info.name}.py").read_text()
        assert "@register" in source, f"erasekit.{package}.{info.name} registers no method"
    assert len(list(records)) >= 4


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_help_imports_no_heavy_library():
    loaded = _run(
        "import sys\n"
        "from erasekit.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(','.join(m for m in ('torch', 'pandas', 'scipy', 'sklearn', 'numpy') if m in sys.modules), file=sys.stderr)\n"
        "sys.stdout.flush()\n"
    )
    assert "Commands:" in loaded
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from erasekit.cli import main; main(['--help']); "
            "sys.exit(1 if {'torch', 'pandas', 'scipy'} & set(sys.modules) else 0)",
        ],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, "erasekit --help imported torch, pandas or scipy"
    # positive control: the same check sees torch once a command that needs it is listed in detail
    heavy = subprocess.run(
        [sys.executable, "-c", "import sys; import erasekit.training; sys.exit(1 if {'torch'} & set(sys.modules) else 0)"],
        capture_output=True,
        text=True,
    )
    assert heavy.returncode == 1


def test_version_is_single_sourced(capsys):
    from erasekit.cli import main

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"erasekit {erasekit.__version__}"
    from importlib.metadata import version

    assert version("erasekit") == erasekit.__version__
    pyproject = (SOURCE.parents[1] / "pyproject.toml").read_text()
    assert f'version = "{erasekit.__version__}"' not in pyproject, "the version is written only in erasekit/_version.py"
