"""The README, docs/ and the notebook say what the code does: flags, defaults, links, counts."""

import ast
import glob
import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

from keras_alexnet import cli
from keras_alexnet.config import RECIPES, TrainConfig
from keras_alexnet.models.build import build_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md", "colab/README.md", *sorted(
    os.path.relpath(path, REPO) for path in glob.glob(os.path.join(REPO, "docs", "*.md")))]
# Flags of other programs the pages show: docker, saved_model_cli, XLA, the PyTorch reference,
# tensorflow_model_server.
OTHER_PROGRAMS_FLAGS = {"--rm", "--tag_set", "--xla_force_host_platform_device_count",
                        "--pipeline", "--workers", "--model_base_path", "--model_name",
                        "--rest_api_port", "--worker", "--command",  # the last two: gcloud's
                        "--enable_model_warmup", "--dist"}  # the last: pytest-xdist's


def read(page: str) -> str:
    with open(os.path.join(REPO, page), encoding="utf-8") as file:
        return file.read()


def notebook_text() -> str:
    with open(os.path.join(REPO, "colab", "keras_alexnet.ipynb"), encoding="utf-8") as file:
        return "\n".join("".join(cell["source"]) for cell in json.load(file)["cells"])


def cli_flags() -> set[str]:
    parser = cli.build_parser()
    commands = next(action for action in parser._actions if action.choices)
    return {flag for command in commands.choices.values() for action in command._actions
            for flag in action.option_strings}


def script_flags() -> set[str]:
    """The flags of the benchmark scripts and of the test suite (conftest.py's options)."""
    flags = set()
    for path in glob.glob(os.path.join(REPO, "benchmarks", "*.py")) + [
            os.path.join(REPO, "tests", "conftest.py")]:
        with open(path, encoding="utf-8") as file:
            flags.update(re.findall(r"add(?:_argument|option)\(\s*\"(--[a-z0-9-]+)\"",
                                    file.read()))
    return flags


def test_every_flag_the_pages_show_exists():
    shown = {flag for page in PAGES for flag in
             re.findall(r"(?<![\w-])(--[a-z][a-z0-9_-]*)", read(page))}
    shown |= set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9_-]*)", notebook_text()))
    assert "--max-request-pixels" in cli_flags()
    assert sorted(shown - cli_flags() - script_flags() - OTHER_PROGRAMS_FLAGS) == []


def parse_value(text: str):
    """A value as the pages write it: `"step"`, 5e-4, 1,000, None, False, a ~ path."""
    text = text.strip().strip("`").strip('"')
    if text in ("None", "True", "False"):
        return {"None": None, "True": True, "False": False}[text]
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return text


def same(value, expected) -> bool:
    def number(x) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    if number(expected):
        return number(value) and value == pytest.approx(expected)
    return value == expected


def documented_defaults():
    """`(page, field, value)` for each table cell written `field` (default)."""
    fields = {name for name in TrainConfig.__dataclass_fields__}
    for page in PAGES:
        for row in re.findall(r"^\|([^|\n]+)\|", read(page), flags=re.MULTILINE):
            for name, value in re.findall(r"`(\w+)` \(([^()]*)\)", row):
                if name in fields:
                    yield page, name, parse_value(value)


def test_every_default_a_table_gives_is_the_configs(tmp_path):
    found = list(documented_defaults())
    assert len(found) >= 12
    # The cache's default depends on the environment (the tests set $XDG_CACHE_HOME): read it
    # in a process with a home of its own and no $XDG_CACHE_HOME.
    env = {key: value for key, value in os.environ.items() if key != "XDG_CACHE_HOME"}
    fresh = subprocess.run([sys.executable, "-c", "from keras_alexnet import TrainConfig; "
                            "print(TrainConfig().compilation_cache_dir)"],
                           env={**env, "HOME": str(tmp_path)}, capture_output=True, text=True,
                           check=True).stdout.strip()
    defaults = {**TrainConfig().to_dict(),
                "compilation_cache_dir": fresh.replace(str(tmp_path), "~", 1)}
    wrong = [(page, name, value) for page, name, value in found
             if not same(value, defaults[name])]
    assert wrong == []


def test_the_readmes_seed_recipe_table_is_trainconfigs_defaults():
    section = read("README.md").split("## The seed recipe", 1)[1].split("\n\n", 3)[2]
    rows = [row.split("|")[2:4] for row in section.splitlines()[2:]]
    checked = 0
    for names, values in rows:
        names = re.findall(r"`(\w+)`", names)
        values = re.sub(r"\s*\(.*\)\s*$", "", values).split(", ")  # without a note in brackets
        assert len(names) == len(values), (names, values)
        for name, value in zip(names, values):
            assert same(parse_value(value), getattr(TrainConfig(), name)), (name, value)
            checked += 1
    assert checked == 14


def test_the_readmes_recipe_table_is_the_recipes():
    table = read("README.md").split("| recipe | what it is | changes from `seed` |", 1)[1]
    rows = {row.split("|")[1].strip().strip("`"): row.split("|")[3]
            for row in table.strip().split("\n\n", 1)[0].splitlines()[1:]}
    assert sorted(rows) == sorted(RECIPES)
    for name, changes in rows.items():
        written = {key: parse_value(value)
                   for key, value in re.findall(r"`(\w+)=([^`]+)`", changes)}
        base = re.match(r"`(\w+)` \+", changes.strip())
        if base:
            written = {**RECIPES[base.group(1)].values, **written}
        expected = RECIPES[name].values
        assert sorted(written) == sorted(expected), name
        assert all(same(written[key], expected[key]) for key in expected), name


def test_every_relative_link_resolves():
    missing = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", read(page)):
            if "://" in target or target.startswith("#"):
                continue
            path = os.path.join(REPO, os.path.dirname(page), target.split("#")[0])
            if not os.path.exists(path):
                missing.append((page, target))
    assert missing == []


def test_every_parameter_count_written_is_a_models():
    def count(**kwargs) -> str:
        return f"{build_model(seed=0, **kwargs).count_params():,}"

    tweaked_config = TrainConfig.from_recipe("tweaked")
    seed, tweaked = count(), count(conv1_stride=tweaked_config.conv1_stride,
                          batch_norm=tweaked_config.batch_norm)
    counts = {seed, tweaked, count(variant="paper", groups=2), count(variant="paper", groups=1)}
    assert len(counts) == 4
    texts = {page: read(page) for page in PAGES} | {"notebook": notebook_text()}
    written = {(page, number) for page, text in texts.items()
               for number in re.findall(r"(\d{1,3}(?:,\d{3}){2,}) parameters", text)}
    assert len(written) >= 4
    assert sorted(number for _, number in written if number not in counts) == []
    assert ("README.md", seed) in written
    assert {("notebook", seed), ("notebook", tweaked)} <= written


def imported_package_names(source: str) -> list[tuple[str, str]]:
    """`(module, name)` of every `from keras_alexnet… import name` and `import keras_alexnet…`
    in Python source (notebook magics and shell lines left out)."""
    code = "\n".join(line[:len(line) - len(line.lstrip())] + "pass"
                     if line.lstrip().startswith(("!", "%")) else line
                     for line in source.splitlines())
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras_alexnet"):
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names
                      if alias.name.startswith("keras_alexnet")]
    return found


def used_module_attributes(source: str) -> list[tuple[str, str]]:
    """`(module, attribute)` for each `name.attribute` in Python source whose `name` a
    `from keras_alexnet… import name` bound to one of the package's modules."""
    def is_module(module: str, name: str) -> bool:
        package = importlib.import_module(module)
        return hasattr(package, "__path__") and bool(
            importlib.util.find_spec(f"{module}.{name}"))

    tree = ast.parse(source)
    modules = {alias.asname or alias.name: f"{node.module}.{alias.name}"
               for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               and (node.module or "").startswith("keras_alexnet") for alias in node.names
               if is_module(node.module, alias.name)}
    return [(modules[node.value.id], node.attr) for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id in modules]


def test_every_function_the_docs_call_on_a_package_module_exists():
    """`from keras_alexnet import serving` then `serving.predict(…)` fails only when run."""
    blocks = [block for page in PAGES
              for block in re.findall(r"```python\n(.*?)```", read(page), flags=re.S)]
    used = [found for block in blocks for found in used_module_attributes(block)]
    assert ("keras_alexnet.serving.grpc_client", "predict_grpc") in used
    missing = [f"{module}.{name}" for module, name in used
               if not hasattr(importlib.import_module(module), name)]
    assert missing == []


def test_every_package_name_the_notebook_and_the_docs_import_exists():
    """Also in the cells only Colab runs (TF Serving) and the docs' code blocks, which no test
    executes: a moved or renamed module is found here."""
    with open(os.path.join(REPO, "colab", "keras_alexnet.ipynb"), encoding="utf-8") as file:
        cells = ["".join(cell["source"]) for cell in json.load(file)["cells"]
                 if cell["cell_type"] == "code"]
    blocks = [block for page in PAGES
              for block in re.findall(r"```python\n(.*?)```", read(page), flags=re.S)]
    imports = [found for source in cells + blocks for found in imported_package_names(source)]
    assert len(imports) >= 8
    for module, name in imports:
        imported = importlib.import_module(module)
        assert name is None or hasattr(imported, name) or importlib.util.find_spec(
            f"{module}.{name}"), f"{module}.{name}"


@pytest.mark.parametrize("page", ["README.md", "docs/presets.md"])
def test_the_presets_table_is_each_shipped_presets_metadata(page):
    from keras_alexnet.models.catalogue import SHIPPED_DIR, shipped_presets

    table = read(page).split("<!-- presets-table -->\n", 1)[1].split("\n\n", 1)[0]
    rows = {}
    for row in table.splitlines()[2:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells
    assert sorted(rows) == sorted(os.listdir(SHIPPED_DIR))
    for name, metadata in shipped_presets().items():
        _, description, params, test, single, size, command = rows[name][:7]
        assert description == metadata["description"]
        assert int(params.replace(",", "")) == metadata["parameter_count"]
        assert test == f"{100 * metadata['test_accuracy']:.2f} %"
        assert single == f"{100 * metadata['test_accuracy_single_view']:.2f} %"
        assert command == f"`{metadata['command']}`"
        on_disk = sum(os.path.getsize(os.path.join(SHIPPED_DIR, name, file))
                      for file in os.listdir(os.path.join(SHIPPED_DIR, name)))
        assert size == f"{on_disk / 1e6:.1f} MB"
