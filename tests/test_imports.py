"""The house: which module may import which (docs/architecture.md, "Layers").

Walks the imports of every module of ``nbnumba/`` and ``cli/`` (the ``nbnumba_cli``
package) with ``ast`` (imports inside functions count too) and checks that the library
never imports the command-line package, that there is no import cycle, and that no
module imports one of a higher layer.
"""
import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = {"nbnumba": ROOT / "nbnumba", "nbnumba_cli": ROOT / "cli",
            "nbnumba_dxtbx": ROOT / "dxtbx_plugin"}

#: layers from the top (0) down; a module may import its own layer and those below.
#: A name ending in "." covers a package and everything in it, except its modules named
#: in another layer.
LAYERS = (
    ("renderer client (stdlib only)", ("nbnumba_cli.client", "nbnumba_cli.server")),
    ("dxtbx format class", ("nbnumba_dxtbx",)),
    ("front ends", ("nbnumba_cli.",)),
    ("library front end", ("nbnumba", "nbnumba.cmdline", "nbnumba.flags", "nbnumba.precompile",
                           "nbnumba.experiment_input")),
    ("series", ("nbnumba.series.",)),
    ("engine", ("nbnumba.engine", "nbnumba.running", "nbnumba.output", "nbnumba.diagnostics",
                "nbnumba.toolbox.")),
    ("kernels", ("nbnumba.kernels.", "nbnumba.pixel", "nbnumba.lanes", "nbnumba.gpu_math")),
    ("physics, geometry, io", ("nbnumba.physics", "nbnumba.geometry", "nbnumba.crystal",
                               "nbnumba.sources", "nbnumba.sampling", "nbnumba.rng",
                               "nbnumba.images", "nbnumba.experiment", "nbnumba.panel_geometry",
                               "nbnumba.io.")),
    ("config, vec", ("nbnumba.config", "nbnumba.fields", "nbnumba.vec", "nbnumba.constants", "nbnumba.errors",
                     "nbnumba._version", "nbnumba.memory", "nbnumba.progress",
                     "nbnumba._jit", "nbnumba.compilecache", "nbnumba.panels",
                     "nbnumba.presets",
                     # the readers StructureFactors.from_mtz/from_sf_cif/from_model call
                     # (gemmi); they import only errors, memory, constants, io.errors
                     "nbnumba.io.reflections", "nbnumba.io.reflection_files",
                     "nbnumba.io.model_sf", "nbnumba.io.errors")),
)

#: upward imports allowed (none)
KNOWN_EXCEPTIONS = set()


def _modules():
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = [package] + list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _owner(name):
    """The module of ours that importing ``name`` loads (None: not ours)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module, path):
    base = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(_owner(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                package = base
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                target = package + ("." + target if target else "")
            # "from package import name" loads package.name when that is a module
            found.update(_owner(target + "." + alias.name) or _owner(target)
                         for alias in node.names)
    found.discard(None)
    found.discard(module)
    return found


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _layer(module):
    """The layer of the most specific entry naming the module (a module named itself
    wins over its package's "name." entry)."""
    matches = [(len(name), index) for index, (_, names) in enumerate(LAYERS) for name in names
               if module == name or (name.endswith(".") and (module + ".").startswith(name))]
    if not matches:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS (and "
                             "docs/architecture.md)")
    return max(matches)[1]


def _edges():
    return {(a, b) for a, targets in GRAPH.items() for b in targets} - KNOWN_EXCEPTIONS


def test_the_walk_sees_the_imports():
    """The walker itself: known edges are found (a walker that finds nothing would pass)."""
    assert "nbnumba.engine" in GRAPH["nbnumba_cli.main"]
    assert "nbnumba.kernels.cpu" in GRAPH["nbnumba.kernels.cpu_backend"]
    assert "nbnumba.vec" in GRAPH["nbnumba.crystal"]
    assert len(MODULES) > 50
    # a module named in a lower layer than its package's entry is in that layer
    assert _layer("nbnumba.io.reflections") > _layer("nbnumba.io.hkl")


def test_the_library_never_imports_the_command_line_package():
    bad = sorted((a, b) for a, b in _edges()
                 if not a.startswith("nbnumba_cli") and b.startswith("nbnumba_cli"))
    assert bad == []


def test_the_dxtbx_format_class_imports_nothing_of_nbnumba():
    """It runs in DIALS' Python, where nbnumba is installed without its dependencies."""
    assert GRAPH["nbnumba_dxtbx"] == set()
    assert all("nbnumba_dxtbx" not in targets for targets in GRAPH.values())


def test_every_module_has_a_layer_and_imports_none_above_it():
    upward = sorted((a, b) for a, b in _edges() if _layer(b) < _layer(a))
    assert upward == [], "imports of a higher layer: %s" % upward


def test_no_import_cycles():
    edges = _edges()
    graph = {m: {b for a, b in edges if a == m} for m in MODULES}
    state, cycles = {}, []

    def visit(module, stack):
        state[module] = "open"
        stack.append(module)
        for nxt in sorted(graph[module]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert cycles == [], "import cycles: %s" % [" -> ".join(c) for c in cycles]


#: the modules a console script runs before it knows whether it renders in-process: they
#: import the standard library and one another only (the client hands over to
#: nbnumba_cli.entry, which imports numba, only to render in-process)
STDLIB_ONLY = {"nbnumba_cli.client", "nbnumba_cli.server", "nbnumba_cli.rundir",
               "nbnumba_cli.wire", "nbnumba_cli.procstate", "nbnumba_cli.stopsignals",
               "nbnumba_cli.guard", "nbnumba_cli"}
#: (module, import) allowed although outside STDLIB_ONLY: the hand-over to in-process
HAND_OVER = {("nbnumba_cli.client", "nbnumba_cli.entry")}
#: modules of STDLIB_ONLY whose functions import more, for the commands themselves
#: (guard.version imports nbnumba): only their module-level imports are checked
MODULE_LEVEL_ONLY = {"nbnumba_cli.guard"}


def _all_imports(path, module_level_only):
    """Top-level names of every module ``path`` imports (relative imports resolved
    against nbnumba_cli)."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if module_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = "nbnumba_cli" + ("." + node.module if node.module else "")
                if node.module:
                    found.add(base)
                else:
                    found.update(base + "." + alias.name for alias in node.names)
            else:
                found.add(node.module)
    return found


def test_the_client_imports_only_the_standard_library():
    """Read from the source: what the console scripts' first modules import."""
    bad = []
    for module in sorted(STDLIB_ONLY):
        imports = _all_imports(MODULES[module], module in MODULE_LEVEL_ONLY)
        for name in sorted(imports):
            top = name.split(".")[0]
            ours = name if name in MODULES else None
            if top in sys.stdlib_module_names or ours in STDLIB_ONLY or \
                    (module, name) in HAND_OVER:
                continue
            bad.append((module, name))
    assert bad == []


def test_a_client_that_finds_no_renderer_has_imported_nothing_else():
    """Run: the client's way to the in-process decision (no renderer, a request
    described, server status asked) loads only the standard library and its modules."""
    probe = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import os, tempfile\n"
        "os.environ['XDG_RUNTIME_DIR'] = tempfile.mkdtemp()\n"
        "from nbnumba_cli import client, procstate, server, wire\n"
        "assert wire.connect_renderer() is None\n"
        "procstate.describe('nbnumba')\n"
        "server._ask(('status',))\n"
        "client.server_mode('nbnumba')\n"
        "print(' '.join(sorted(m for m in set(sys.modules) - before\n"
        "                      if m.split('.')[0] not in sys.stdlib_module_names)))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert loaded <= STDLIB_ONLY | {"nbnumba_cli.client"}, sorted(loaded - STDLIB_ONLY)
    assert "nbnumba_cli.client" in loaded
