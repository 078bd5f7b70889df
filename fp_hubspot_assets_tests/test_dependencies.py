"""The pinned dependency set is what is installed, and the dagster family belongs to one release."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _release(dagster_version: str) -> tuple[int, int]:
    """dagster 1.X.Y ships its integrations as 0.(X+16).Y: 1.13.27 ↔ 0.29.27."""
    major, minor, patch = (int(p) for p in dagster_version.split(".")[:3])
    assert major == 1
    return minor + 16, patch


def test_dagster_postgres_matches_dagster() -> None:
    minor, patch = _release(version("dagster"))
    assert version("dagster-postgres") == f"0.{minor}.{patch}", (
        "dagster-postgres is not the integration release of the installed dagster: pin them together"
    )
    assert version("dagster-webserver") == version("dagster") == version("dagster-graphql")


@pytest.mark.parametrize(
    "package", ["dagster", "dagster-postgres", "hubspot-api-client", "polars", "pydantic"]
)
def test_installed_versions_match_the_lock(package: str) -> None:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line:
            name, pinned = line.split("==", 1)
            pins[name.strip().lower().replace("_", "-")] = pinned.strip()
    assert pins.get(package) == version(package), f"{package} is not the version locked in constraints.txt"


def test_psycopg2_imports() -> None:
    import psycopg2  # noqa: F401 — 2.8.x fails to import on Python 3.11


def _imported_top_level_modules(package: str = "fp_hubspot_assets", everything: bool = False) -> set[str]:
    """Every third-party top-level module ``package`` imports, at module level or inside a function
    (``everything``: the standard library and our own packages too)."""
    import ast
    import sys

    def optional(node: ast.AST) -> set[ast.AST]:
        """Imports guarded by `except ImportError` are optional by design."""
        guarded: set[ast.AST] = set()
        for t in ast.walk(node):
            if isinstance(t, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError") for h in t.handlers
            ):
                guarded.update(n for stmt in t.body for n in ast.walk(stmt))
        return guarded

    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        skip = optional(tree)
        for node in ast.walk(tree):
            if node in skip:
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    if everything:
        return found
    return {m for m in found if m not in sys.stdlib_module_names and m not in {"fp_hubspot_assets", "__future__"}}


def test_the_product_never_imports_its_tooling() -> None:
    """The sandbox and the demo store are tooling beside the product: a production install runs without them,
    and the sandbox stands in for HubSpot without knowing the product (it is checked against HubSpot's
    documented behaviour, not against our client)."""
    assert {"hubspot_sandbox", "fp_demo_store"} & _imported_top_level_modules(everything=True) == set()
    assert "fp_hubspot_assets" not in _imported_top_level_modules("hubspot_sandbox", everything=True)
    assert "fp_demo_store" in _imported_top_level_modules("fp_demo_store", everything=True)  # the walk sees imports


def _runtime_closure() -> set[str]:
    """The distributions a plain `pip install .` brings: our dependencies and theirs, never an extra."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    def name(raw: str) -> str:
        return raw.lower().replace("_", "-")

    todo = [name(Requirement(r).name) for r in requires("fp-hubspot-assets") or [] if "extra ==" not in r]
    seen: set[str] = set()
    while todo:
        dist = todo.pop()
        if dist in seen:
            continue
        seen.add(dist)
        for raw in requires(dist) or []:
            req = Requirement(raw)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(name(req.name))
    return seen


def test_every_runtime_import_is_a_declared_runtime_dependency() -> None:
    """A module the package imports must come with a plain `pip install .`, declared by us by name.

    (A transitive dependency can disappear when the library that brought it changes; the CI script also
    installs without extras into a throwaway venv and imports the definitions.)"""
    from importlib.metadata import packages_distributions, requires

    from packaging.requirements import Requirement

    declared = {
        Requirement(r).name.lower().replace("_", "-") for r in requires("fp-hubspot-assets") or [] if "extra ==" not in r
    }
    closure = _runtime_closure()
    providers = packages_distributions()
    missing, undeclared = [], []
    for module in sorted(_imported_top_level_modules()):
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [])}
        assert dists, f"no installed distribution provides the module {module!r}"
        if not dists & closure:
            missing.append(module)
        elif not dists & declared:
            undeclared.append(f"{module} ({', '.join(sorted(dists))})")
    assert not missing, f"imported but not installed by `pip install .`: {missing} — add them to [project.dependencies]"
    assert not undeclared, f"imported but only a transitive dependency: {undeclared} — declare them in pyproject.toml"
