"""The repository's structure: layers import only downwards, and nothing points outside.

Layers, bottom to top (README "Layout"):

0. physics and utilities: ``isac_gym.{iscc,mimo}``, ``isac_gym.units``,
   ``isac_gym.validation`` and the other plain ``isac_gym`` modules;
1. solvers: ``optimizers``;
2. environments: ``isac_gym.envs`` (and the ``isac_gym`` package itself, which registers
   them by entry-point string);
3. agents and experiments;
4. the command-line wrappers ``train.py`` and ``evaluate.py``.

Every import counts, also the lazy ones inside functions: a lazy upward import is still
an upward dependency.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("isac_gym", "optimizers", "agents", "experiments")
# Third-party packages a layer must not touch (physics and solvers stay Gym- and torch-free).
FORBIDDEN_THIRD_PARTY = {
    0: ("gymnasium", "torch", "stable_baselines3", "ray"),
    1: ("gymnasium", "torch", "stable_baselines3", "ray"),
}
# The run plumbing sits at the bottom (every command line uses it) and imports no layer
# above; it may set torch's thread count and start Ray, both lazily.
RUN_PLUMBING = {"isac_gym.runs": ("torch",), "isac_gym.ray_backend": ("ray",)}


def layer_of(module: str) -> int:
    """The layer of a first-party module name (see the module docstring)."""
    top = module.split(".")[0]
    if top == "optimizers":
        return 1
    if top in ("agents", "experiments"):
        return 3
    if top in ("train", "evaluate"):
        return 4
    if module == "isac_gym" or module.startswith("isac_gym.envs"):
        return 2
    return 0


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module imported anywhere in the file."""
    names: set[str] = set()
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else None
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:  # relative import: resolve against this file's package
                base = (package or module_name(path)).split(".")
                source = ".".join(base[: len(base) - node.level + 1] + [source]).strip(".")
            # `from package import submodule` imports the submodule, not the package body.
            names.update(
                f"{source}.{alias.name}" if is_module(f"{source}.{alias.name}") else source
                for alias in node.names
            )
    return names


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def source_files() -> list[Path]:
    files = [ROOT / "train.py", ROOT / "evaluate.py"]
    for package in PACKAGES:
        files += sorted((ROOT / package).rglob("*.py"))
    return files


@pytest.mark.parametrize("path", source_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_a_higher_layer(path):
    own = layer_of(module_name(path))
    for name in imported_modules(path):
        top = name.split(".")[0]
        if top in PACKAGES or top in ("train", "evaluate"):
            assert layer_of(name) <= own, f"{module_name(path)} (layer {own}) imports {name}"
        allowed = RUN_PLUMBING.get(module_name(path), ())
        forbidden = set(FORBIDDEN_THIRD_PARTY.get(own, ())) - set(allowed)
        assert top not in forbidden, f"{module_name(path)} imports {name}"


def test_the_layer_map_classifies_known_modules():
    assert layer_of("isac_gym.iscc.model") == 0
    assert layer_of("isac_gym.units") == 0
    assert layer_of("optimizers.iscc.fast") == 1
    assert layer_of("isac_gym.envs.iscc") == 2
    assert layer_of("isac_gym") == 2
    assert layer_of("agents.policies") == 3
    assert layer_of("experiments.paper") == 3
    assert layer_of("evaluate") == 4


def test_importing_the_solvers_loads_no_environment_agent_or_learning_library():
    code = (
        "import sys, optimizers; "
        "bad = [m for m in ('isac_gym.envs.iscc', 'agents', 'experiments', 'torch', "
        "'stable_baselines3', 'cvxpy') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.split()
    suffixes = {".py", ".md", ".toml", ".yml", ".yaml", ".cfg", ".txt", ""}
    return [ROOT / name for name in listed if Path(name).suffix in suffixes]


def test_no_file_refers_outside_the_repository():
    # Spelled in pieces so that this file does not match itself.
    outside = tuple(
        prefix + "/" + rest
        for prefix, rest in [("..", "shared"), ("shared", "docs"), ("shared", "papers")]
    )
    offenders = [
        f"{path.relative_to(ROOT)}: {marker}"
        for path in tracked_text_files()
        if path.is_file()
        for marker in outside
        if marker in path.read_text(errors="ignore")
    ]
    assert offenders == []


def test_no_function_is_longer_than_80_lines():
    long = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1})"
        for path in source_files()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > 80
    ]
    assert long == []


def test_ruff_passes_with_the_complexity_check():
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.is_file():
        pytest.skip("ruff is not installed next to this Python (pip install -e '.[dev]')")
    out = subprocess.run([str(ruff), "check", "."], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_readme_layout_names_every_module_and_only_existing_ones():
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("## Layout") : readme.index("## Model and units")]
    modules = {p.name for p in source_files() if p.name != "__init__.py"}
    modules |= {p.name for p in (ROOT / "scripts").glob("*.py")}
    named = set(re.findall(r"\b([a-z_]+\.py)\b", block))
    assert sorted(modules - named) == [], "modules missing from the README layout"
    assert sorted(named - modules) == [], "the README layout names files that do not exist"


def test_every_file_under_docs_is_cited_by_name():
    listed = subprocess.run(
        ["git", "ls-files", "docs"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.split()
    pages = ["README.md", "BENCHMARKS.md"] + [name for name in listed if name.endswith(".md")]
    texts = {page: (ROOT / page).read_text() for page in pages}
    uncited = [
        name
        for name in listed
        if not any(Path(name).name in text for page, text in texts.items() if page != name)
    ]
    assert uncited == []
