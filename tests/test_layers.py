"""The package's rooms import one way: nothing below imports a room above it (see README, Layout)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bench_suite"
#: rooms from the bottom up; a room may import its own modules and any room on a lower layer
LAYERS = [
    {"core"},
    {"snn"},
    {"neurons", "norms", "trainers", "datasets", "models", "metrics"},
    {"results"},
    {"experiment"},
    {"testing"},
    {"cli"},
]
LAYER_OF = {room: level for level, rooms in enumerate(LAYERS) for room in rooms}


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "bench_suite" else None


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module == "bench_suite":
                for alias in node.names:
                    yield f"bench_suite.{alias.name}", node.lineno
            else:
                yield node.module, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno


def _type_checking_lines(path: Path) -> set[int]:
    """Lines inside ``if TYPE_CHECKING:`` blocks: type annotations only, no import at run time."""
    lines = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for child in node.body:
                lines.update(range(child.lineno, child.end_lineno + 1))
    return lines


def test_every_module_is_in_a_room_of_the_layer_map():
    rooms = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert rooms == set(LAYER_OF)


def test_no_room_imports_a_room_above_it_and_plugin_rooms_import_only_core_and_snn():
    violations = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if len(relative.parts) == 1:
            continue  # __init__ / __main__ at the top
        here = relative.parts[0]
        skip = _type_checking_lines(path)
        for module, line in _imports(path):
            there = _room(module)
            if there is None or there == here or line in skip or there not in LAYER_OF:
                continue
            if LAYER_OF[there] >= LAYER_OF[here]:
                violations.append(f"{relative}:{line} imports {module} ({there} is not below {here})")
    assert violations == []
