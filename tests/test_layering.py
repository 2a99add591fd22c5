"""The layers of the package (docs/ARCHITECTURE.md, "The layers of the package") hold.

Every module of t2t_lite/ is parsed with `ast`; each of its imports of t2t_lite, at module level
or inside a function, is an edge to the module it loads and to every package `__init__` that
loading it runs. An edge may go to the module's own layer (its own package, or a module of the
same group of files) or to a layer below, never up and never to a sibling the rule keeps
apart (training/ and decoding/); nothing but the scripts (bin/, which register the built-in
problems) imports `problems`; and the edges have no cycle.
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "t2t_lite"

# Lowest first: a module may import its own layer and the layers before it. Each entry names
# top-level modules or subpackages of t2t_lite.
LAYERS = [
    ("base", {"__init__", "constants", "errors", "hparams_parser", "hparams", "registry"}),
    ("plumbing", {"utils", "common_hparams", "output_dir"}),
    ("layers", {"layers"}),
    ("models", {"models"}),
    ("data", {"data"}),
    ("task", {"task"}),
    ("loops", {"training", "decoding", "serving"}),
    ("rl", {"rl"}),
    ("script support", {"flags", "usr_dir"}),
    ("scripts", {"bin"}),
]
# Parts of one layer that must not import each other: what one needs of the other is passed in.
SIBLINGS_APART = [{"training", "decoding"}]
# layers/ are Keras layers: of the package they import constants alone.
ONLY = {"layers": {"constants", "layers"}}


def _module_name(path):
  parts = list(path.relative_to(ROOT).with_suffix("").parts)
  if parts[-1] == "__init__":
    parts.pop()
  return ".".join(parts)


def _modules():
  return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _group(module):
  """The top-level module or subpackage of t2t_lite a module belongs to."""
  parts = module.split(".")
  return parts[1] if len(parts) > 1 else "__init__"


def _rank(group):
  for rank, (_, groups) in enumerate(LAYERS):
    if group in groups:
      return rank
  raise AssertionError("t2t_lite/%s is in no layer: add it to LAYERS here and to the list in "
                       "docs/ARCHITECTURE.md" % group)


def _resolve(module, node):
  """The t2t_lite module names an import statement loads (absolute names)."""
  is_package = MODULES[module].name == "__init__.py"
  if isinstance(node, ast.Import):
    return [alias.name for alias in node.names]
  if node.level:
    base = module.split(".")
    base = base[:len(base) - node.level + (1 if is_package else 0)]
    prefix = ".".join(base + ([node.module] if node.module else []))
  else:
    prefix = node.module or ""
  # `from a import b` loads a.b when that is a module, else only a.
  return [prefix + "." + alias.name if prefix + "." + alias.name in MODULES else prefix
          for alias in node.names]


def _loaded(module, target):
  """`target` and the packages importing it runs that `module` does not run already."""
  parts = target.split(".")
  loaded = []
  for i in range(1, len(parts) + 1):
    name = ".".join(parts[:i])
    if name in MODULES and not (module == name or module.startswith(name + ".")):
      loaded.append(name)
  return loaded


def _imports():
  """[(module, imported module, line, where)] for every import of t2t_lite or problems."""
  edges = []
  for module, path in MODULES.items():
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    local = set()
    for node in ast.walk(tree):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        local.update(id(n) for n in ast.walk(node) if n is not node)
    for node in ast.walk(tree):
      if not isinstance(node, (ast.Import, ast.ImportFrom)):
        continue
      where = "inside a function" if id(node) in local else "at module level"
      for target in _resolve(module, node):
        if (target == "problems" or target.startswith("problems.")) and _group(module) != "bin":
          edges.append((module, target, node.lineno, where))
        for name in _loaded(module, target) if target.startswith("t2t_lite") else []:
          edges.append((module, name, node.lineno, where))
  return edges


EDGES = _imports()


def _describe(module, target, line, where):
  return "%s (%s line %d, %s) imports %s" % (
      module, MODULES[module].relative_to(ROOT), line, where, target)


def layering_violations(edges):
  """The edges that break the layers, each as a sentence."""
  bad = []
  for module, target, line, where in edges:
    if not target.startswith("t2t_lite"):
      bad.append(_describe(module, target, line, where) + ": t2t_lite never imports problems")
      continue
    mine, theirs = _group(module), _group(target)
    if mine == theirs:
      continue
    if mine in ONLY and theirs not in ONLY[mine]:
      bad.append(_describe(module, target, line, where) +
                 ": %s/ imports only %s" % (mine, ", ".join(sorted(ONLY[mine] - {mine}))))
    elif _rank(theirs) > _rank(mine):
      bad.append(_describe(module, target, line, where) + ": a higher layer (%s above %s)" % (
          LAYERS[_rank(theirs)][0], LAYERS[_rank(mine)][0]))
    elif any({mine, theirs} <= apart for apart in SIBLINGS_APART):
      bad.append(_describe(module, target, line, where) +
                 ": %s and %s do not import each other; pass the thing in" % (mine, theirs))
  return bad


def import_cycles(edges):
  """One cycle per strongly connected group of modules (Tarjan), as "a -> b -> a"."""
  graph = {}
  for module, target, _, _ in edges:
    if target.startswith("t2t_lite") and target != module:
      graph.setdefault(module, set()).add(target)
  index, low, stack, on_stack, cycles = {}, {}, [], set(), []

  def visit(node):
    index[node] = low[node] = len(index)
    stack.append(node)
    on_stack.add(node)
    for nxt in sorted(graph.get(node, ())):
      if nxt not in index:
        visit(nxt)
        low[node] = min(low[node], low[nxt])
      elif nxt in on_stack:
        low[node] = min(low[node], index[nxt])
    if low[node] == index[node]:
      group = []
      while True:
        top = stack.pop()
        on_stack.discard(top)
        group.append(top)
        if top == node:
          break
      if len(group) > 1:
        cycles.append(_a_cycle(graph, set(group)))

  for node in sorted(graph):
    if node not in index:
      visit(node)
  return cycles


def _a_cycle(graph, group):
  start = min(group)
  path, seen, node = [start], {start}, start
  while True:
    node = min(n for n in graph[node] if n in group)
    path.append(node)
    if node in seen:
      return " -> ".join(path[path.index(node):])
    seen.add(node)


def test_every_module_is_in_a_layer():
  for module in MODULES:
    _rank(_group(module))


def test_no_module_imports_a_higher_layer_or_a_sibling_kept_apart():
  bad = layering_violations(EDGES)
  assert not bad, "imports that break the layers (docs/ARCHITECTURE.md):\n  " + "\n  ".join(bad)


def test_no_import_cycle():
  cycles = import_cycles(EDGES)
  assert not cycles, "import cycles among t2t_lite modules:\n  " + "\n  ".join(cycles)


@pytest.mark.parametrize("edge, message", [
    (("t2t_lite.task", "t2t_lite.training.optimizers", 1, "inside a function"),
     "a higher layer (loops above task)"),
    (("t2t_lite.training.evaluation", "t2t_lite.decoding.runner", 1, "inside a function"),
     "training and decoding do not import each other"),
    (("t2t_lite.rl.loop_hparams", "t2t_lite.flags", 1, "at module level"),
     "a higher layer (script support above rl)"),
    (("t2t_lite.layers.dense", "t2t_lite.common_hparams", 1, "at module level"),
     "layers/ imports only constants"),
    (("t2t_lite.registry", "problems", 1, "inside a function"),
     "t2t_lite never imports problems"),
])
def test_the_check_names_what_breaks_the_layers(edge, message):
  (bad,) = layering_violations([edge])
  assert message in bad and edge[0] in bad and edge[1] in bad


def test_the_check_finds_a_cycle_through_a_function_local_import():
  edges = [("t2t_lite.data.text_encoder", "t2t_lite.data.sentencepiece_encoder", 1, "inside"),
           ("t2t_lite.data.sentencepiece_encoder", "t2t_lite.data.text_encoder", 1, "")]
  assert import_cycles(edges) == [
      "t2t_lite.data.sentencepiece_encoder -> t2t_lite.data.text_encoder -> "
      "t2t_lite.data.sentencepiece_encoder"]
