"""The package's modules import each other without a cycle, counting imports inside functions,
in layers; and each says its one concern in its docstring's first sentence."""

import ast
import os
import re

import keras_alexnet

PACKAGE_DIR = os.path.dirname(keras_alexnet.__file__)


def imported_modules(path: str) -> set[str]:
    """The `keras_alexnet.*` modules a source file imports anywhere in it (but under
    `if TYPE_CHECKING:`)."""
    with open(path, encoding="utf-8") as file:
        tree = ast.parse(file.read())
    for node in ast.walk(tree):  # imports for type checkers only never run
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING",
                                                                   "typing.TYPE_CHECKING"):
            node.body = []
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "keras_alexnet":  # `from keras_alexnet import run_dir`
                found.update(f"keras_alexnet.{alias.name}" for alias in node.names)
            elif node.module.startswith("keras_alexnet."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("keras_alexnet."))
    return found


def package_modules() -> dict[str, str]:
    """Every module of the package by dotted name, a subpackage's `__init__` by its own."""
    modules = {}
    for folder, _, names in os.walk(PACKAGE_DIR):
        package = os.path.relpath(folder, os.path.dirname(PACKAGE_DIR)).replace(os.sep, ".")
        for name in names:
            if name.endswith(".py"):
                module = package if name == "__init__.py" else f"{package}.{name[:-3]}"
                modules[module] = os.path.join(folder, name)
    return modules


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {module: imported_modules(path) & set(modules) for module, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a list of modules (first == last), or [] when there is none."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str]:
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[module] = "done"
        stack.pop()
        return []

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return []


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "keras_alexnet.training.recipe" in graph and graph["keras_alexnet.training.recipe"]
    assert find_cycle(graph) == []


def test_one_module_owns_the_signature_contract_and_the_export_and_clients_import_it():
    graph = import_graph()
    for module in ("export", "client", "grpc_client"):
        assert "keras_alexnet.serving.signatures" in graph[f"keras_alexnet.serving.{module}"]
    assert "keras_alexnet.serving.export" not in graph["keras_alexnet.serving.client"]


# The package's layers from the bottom: each module imports only its own layer and those
# below it. The package's `__init__` (its public names) stands on top of them all.
LAYERS = ("errors", "version", "utils", "config", "data", "models", "layers", "run_dir",
          "serving", "evaluation", "plots", "training", "web", "cli")


def layer(module: str) -> int:
    """The layer of a `keras_alexnet.<part>…` module; the package itself is above them all."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 else len(LAYERS)


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Every `(module, imported)` whose imported module lies in a higher layer."""
    return sorted((module, name) for module, imported in graph.items() for name in imported
                  if layer(name) > layer(module))


def test_the_layer_check_finds_a_planted_upward_import():
    graph = {"keras_alexnet.serving.export": {"keras_alexnet.run_dir",
                                              "keras_alexnet.training.recipe"},
             "keras_alexnet.models.alexnet": {"keras_alexnet.data.cifar10"}}
    assert upward_imports(graph) == [("keras_alexnet.serving.export",
                                      "keras_alexnet.training.recipe")]


def test_every_subpackage_imports_only_the_layers_below_it():
    """utils → config → data → models → run_dir → serving → evaluation → plots → training →
    cli: no module imports a later stage (imports inside functions count)."""
    graph = import_graph()
    assert {module.split(".")[1] for module in graph if "." in module} == set(LAYERS)
    assert upward_imports(graph) == []


def test_train_leaves_what_fit_trains_and_is_fed_to_fit_setup():
    """`train()`'s module tells the run's story; what `fit` trains and is fed lives in
    `fit_setup`."""
    assert "keras_alexnet.training.fit_setup" in import_graph()["keras_alexnet.training.recipe"]


def summary(path: str) -> str:
    """A module's docstring's first paragraph on one line ("" without a docstring)."""
    with open(path, encoding="utf-8") as file:
        docstring = ast.get_docstring(ast.parse(file.read())) or ""
    return " ".join(docstring.split("\n\n")[0].split())


def not_sentences(summaries: dict[str, str]) -> dict[str, str]:
    """The modules whose summary is no sentence: empty, not begun by a capital, a `name` or the
    package's name, or not ended by a full stop."""
    return {module: text for module, text in summaries.items()
            if not re.match(r"([A-Z`]|keras_alexnet\b).*[.!?]\)?$", text)}


def test_the_sentence_check_finds_a_missing_docstring_and_a_fragment():
    assert not_sentences({"a": "The run directory: its files.", "b": "`train()`: a recipe.",
                          "c": "", "d": "helpers", "e": "Helpers of no one stage"}) == {
        "c": "", "d": "helpers", "e": "Helpers of no one stage"}


def test_every_module_says_its_one_concern_in_a_docstring_sentence():
    """The first paragraph of each module's docstring is one sentence or more saying what the
    module is for: what a reviewer reads each of its functions against (docs/development.md),
    however long the module is."""
    summaries = {module: summary(path) for module, path in package_modules().items()}
    assert len(summaries) > 50
    assert not_sentences(summaries) == {}
