"""Every stage's deps cover every project module its command imports, so a code change reruns it.

For each stage of dvc.yaml (foreach expanded by DVC's own parser), the command `python -m stages.<x>
<item>` is followed through its static import closure, restricted to the project's packages (`gdl`,
`stages`): every `import` / `from ... import` anywhere in a file (inside functions too, since stages
import their heavy modules late), each package's `__init__.py` on the way down, and `from pkg import
name` counted as the submodule `pkg/name` where one exists. Imports made by name at run time cannot be
parsed, so they are declared here:

* a model stage (train/sample/evaluate/report of a key of dvc.yaml's `vars: models:`) imports its
  family's package: every file of `gdl/families/<family>/` (`families.get`, `Family.model()`);
* a data/preprocess stage imports `gdl/data/<dataset>.py` (`gdl.data.get`);
* a report stage (and `summary`) executes the notebook templates `reports/templates/*.py` (papermill),
  whose own imports count as the stage's.

A file is covered by a dep that is the same path or a folder holding it. No TensorFlow, no repro:
this takes about as long as DVC takes to parse dvc.yaml.
"""

from __future__ import annotations

import ast
import posixpath
import shlex
from functools import cache
from pathlib import Path

import pytest
import yaml

from gdl.pipeline import dvc_stages

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gdl", "stages")
MODEL_STAGES = {"train", "sample", "evaluate", "report"}
DATA_STAGES = {"data", "preprocess"}
TEMPLATES = "reports/templates"


def module_file(module: str, root: Path = ROOT) -> str | None:
    """The repo-relative file of a project module (`a/b.py` or `a/b/__init__.py`), or None."""
    if module.split(".")[0] not in PACKAGES:
        return None
    base = Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if (root / candidate).is_file():
            return candidate.as_posix()
    return None


def _with_parents(module: str, root: Path) -> list[str]:
    """The files importing `module` loads: each package's __init__.py on the way down, then the module."""
    parts = module.split(".")
    found = [module_file(".".join(parts[:i]), root) for i in range(1, len(parts) + 1)]
    return [f for f in found if f]


def _package_of(path: str) -> list[str]:
    """The package a file's relative imports start from: gdl/data/digits.py and gdl/data/__init__.py -> gdl.data."""
    return list(Path(path).parts[:-1])


@cache
def imports_of(path: str, root: Path = ROOT) -> frozenset[str]:
    """Project module files that the file `path` imports directly (anywhere in it, with parent packages)."""
    tree = ast.parse((root / path).read_text(), filename=path)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.update(_with_parents(alias.name, root))
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the file's package, up level-1 packages
                package = _package_of(path)
                package = package[: len(package) - (node.level - 1)]
                module = ".".join(package + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.update(_with_parents(module, root))
            for alias in node.names:  # `from gdl import data`: the submodule gdl/data/__init__.py
                sub = module_file(f"{module}.{alias.name}", root) if alias.name != "*" else None
                if sub:
                    found.add(sub)
    return frozenset(found)


def closure(files: set[str], root: Path = ROOT) -> set[str]:
    """`files` and every project module they import, transitively."""
    seen: set[str] = set()
    todo = list(files)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if path.endswith(".py"):
            todo.extend(imports_of(path, root) - seen)
    return seen


def models_var(dvc_file: Path) -> dict[str, dict]:
    doc = yaml.safe_load(dvc_file.read_text())
    return next(v["models"] for v in doc["vars"] if isinstance(v, dict) and "models" in v)


def declared_imports(kind: str, item: str, models: dict[str, dict], root: Path = ROOT) -> set[str]:
    """What a stage imports by name at run time (see the module docstring)."""
    found = set()
    if kind in MODEL_STAGES and item in models:
        folder = root / "gdl/families" / models[item]["family"]
        found |= {p.relative_to(root).as_posix() for p in folder.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts}
    if kind in DATA_STAGES:
        found.add(f"gdl/data/{item}.py")
    if kind == "report":
        found |= {p.relative_to(root).as_posix() for p in (root / TEMPLATES).glob("*.py")}
    return found


def command_modules(cmd: str, models: dict[str, dict], root: Path = ROOT) -> set[str]:
    """Every project file the stage command `python -m stages.<x> <item>` loads."""
    argv = shlex.split(cmd)
    assert argv[:2] == ["python", "-m"] and argv[2].startswith("stages."), \
        f"not a `python -m stages.<x> <item>` command: {cmd!r} (teach tests/test_deps.py about it)"
    module, item = argv[2], (argv[3] if len(argv) > 3 else "")
    entry = _with_parents(module, root)
    assert entry, f"{cmd!r}: no module {module}"
    return closure(set(entry) | declared_imports(module.split(".", 1)[1], item, models, root), root)


def covered(path: str, deps: list[str]) -> bool:
    for dep in deps:
        dep = posixpath.normpath(dep)
        if path == dep or path.startswith(dep.rstrip("/") + "/"):
            return True
    return False


def missing_deps(stages: list[dict], models: dict[str, dict], root: Path = ROOT) -> dict[str, list[str]]:
    """{stage: [imported project module files no dep covers]} for the stages that miss any."""
    missing = {}
    for stage in stages:
        gaps = sorted(f for f in command_modules(stage["cmd"], models, root) if not covered(f, stage["deps"]))
        if gaps:
            missing[stage["name"]] = gaps
    return missing


@pytest.fixture(scope="module")
def stages() -> list[dict]:
    return dvc_stages(ROOT)


@pytest.fixture(scope="module")
def models() -> dict[str, dict]:
    return models_var(ROOT / "dvc.yaml")


def test_every_stage_depends_on_every_module_it_imports(stages, models):
    assert len(stages) >= 10
    missing = missing_deps(stages, models)
    assert not missing, "dvc.yaml deps do not cover the modules these stages import:\n" + "\n".join(
        f"  {name}: {', '.join(files)}" for name, files in missing.items())


def test_the_closure_follows_late_imports_submodules_and_declared_families(models):
    evaluate = command_modules("python -m stages.evaluate vae", models)
    assert {"stages/__init__.py", "stages/common.py", "stages/evaluate.py", "gdl/__init__.py",
            "gdl/metrics.py",  # module level
            "gdl/backbones.py", "gdl/baselines.py",  # inside functions
            "gdl/families/__init__.py",  # `from gdl import families`: a submodule
            "gdl/families/vae/model.py", "gdl/training.py",  # declared family, then its own imports
            } <= evaluate
    assert not any(f.startswith("gdl/families/realnvp/") for f in evaluate)
    data = command_modules("python -m stages.data digits", models)
    assert {"gdl/data/__init__.py", "gdl/data/digits.py", "gdl/data/splits.py", "gdl/download.py"} <= data
    assert "gdl/data/moons.py" not in data
    summary = command_modules("python -m stages.report summary", models)
    assert {"reports/templates/summary.py", "gdl/reporting.py", "gdl/atomic.py"} <= summary


def test_the_checker_reports_exactly_a_deleted_dep(stages, models):
    broken = [dict(s, deps=[d for d in s["deps"] if not (s["name"] == "evaluate@vae" and d == "gdl/metrics.py")])
              for s in stages]
    assert sum(len(s["deps"]) for s in broken) == sum(len(s["deps"]) for s in stages) - 1
    before = missing_deps(stages, models)
    after = missing_deps(broken, models)
    assert after.pop("evaluate@vae") == sorted(set(before.get("evaluate@vae", [])) | {"gdl/metrics.py"})
    before.pop("evaluate@vae", None)
    assert after == before


def test_the_checker_reports_a_deleted_family_folder(stages, models):
    broken = [dict(s, deps=[d for d in s["deps"] if not (s["name"] == "train@realnvp" and d == "gdl/families/realnvp")])
              for s in stages]
    gaps = missing_deps(broken, models)["train@realnvp"]
    assert {"gdl/families/realnvp/__init__.py", "gdl/families/realnvp/model.py"} <= set(gaps)
    assert all(f.startswith("gdl/families/realnvp/") for f in gaps)


def test_relative_imports_resolve_from_the_files_package(tmp_path):
    tree = {"gdl/__init__.py": "", "gdl/b.py": "", "gdl/d.py": "", "gdl/unused.py": "",
            "gdl/a.py": "from . import b\nfrom .sub import c\nimport numpy\n",
            "gdl/sub/__init__.py": "from ..b import x\n", "gdl/sub/c.py": "def f():\n    import gdl.d\n",
            "stages/__init__.py": "", "stages/x.py": "from gdl import a\n"}
    for path, body in tree.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(body)
    assert closure({"stages/x.py"}, tmp_path) == set(tree) - {"gdl/unused.py", "stages/__init__.py"}


def test_every_model_has_a_training_curve_plot(models):
    """dvc.yaml's top-level `plots` draw each model's plots/train/<model>.json with the fields it writes,
    and every curve file a stage writes (World Models' V, M and CMA-ES curves too)."""
    doc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    drawn = {f for entry in doc["plots"] for definition in entry.values() for f in definition["y"]}
    written = {out for stage in dvc_stages(ROOT) for out in stage["outs"] if out.startswith("plots/train/")}
    assert {f"plots/train/{m}.json" for m in models} <= written
    assert drawn == written
