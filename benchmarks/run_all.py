"""Runs every benchmark and rewrites BENCHMARKS.md.

    python -m benchmarks.run_all            # all of them
    python -m benchmarks.run_all attention  # some of them: their sections are replaced, the
                                            # others kept as they were
    python -m benchmarks.run_all translate --work_dir=DIR --decode_only
                                            # arguments after a module's name go to it (a
                                            # module with `parse_args(args) -> run() kwargs`)

Each benchmark module has `run()` returning rows (see common.row): a figure measured side by
side with its baseline in one process, the target it is held to, and whether it met it.
"""
import datetime
import importlib
import os
import sys
import time

from benchmarks import common

# In the order they appear in BENCHMARKS.md.
MODULES = ["attention", "input_pipeline", "train", "decode", "vocab", "translate", "peer",
           "serve", "serve_translate", "length"]

_HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT = os.path.join(os.path.dirname(_HERE), "BENCHMARKS.md")


def _wanted(args):
  """[module names], {module name: its arguments} from `NAME [--arg ...] NAME ...`."""
  wanted, module_args = [], {}
  for arg in args:
    if arg.startswith("-") and wanted:
      module_args.setdefault(wanted[-1], []).append(arg)
    else:
      wanted.append(arg)
  return wanted, module_args


def main(argv):
  wanted, module_args = _wanted(argv[1:])
  wanted = wanted or MODULES
  unknown = [m for m in wanted if m not in MODULES]
  if unknown:
    sys.exit("unknown benchmark(s) %s; known: %s" % (", ".join(unknown), ", ".join(MODULES)))
  sections = []
  for name in MODULES:
    if name not in wanted:
      continue
    if not os.path.exists(os.path.join(_HERE, name + ".py")):
      continue
    print("== benchmarks.%s" % name, flush=True)
    start = time.time()
    module = importlib.import_module("benchmarks." + name)
    args = module_args.get(name, [])
    if args and not hasattr(module, "parse_args"):
      sys.exit("benchmarks.%s takes no arguments (%s)" % (name, " ".join(args)))
    rows = module.run(**(module.parse_args(args) if args else {}))
    common.print_rows(rows)
    sections.append((name, rows, time.time() - start, args))
  kept = _sections(OUTPUT) if len(wanted) < len(MODULES) else {}
  lines = [
      "# Benchmarks",
      "",
      "Written by `python -m benchmarks.run_all` on %s%s." % (
          datetime.date.today().isoformat(),
          " (the sections of %s; the others are from an earlier run)" % ", ".join(wanted)
          if kept else ""),
      "",
      "Machine: %s." % common.machine_description(),
      "",
      "Every figure is a ratio (or a rate against the same machine's peak) measured side by side "
      "in one process, so it says how t2t_lite compares, not how fast this machine is.",
      "",
      "Earlier runs: [docs/HISTORY.md](docs/HISTORY.md).",
      "",
  ]
  measured = {name: (rows, seconds, args) for name, rows, seconds, args in sections}
  for name in MODULES:
    if name not in measured:
      lines += kept.get(name, [])
      continue
    rows, seconds, args = measured[name]
    lines += ["## %s" % name, "",
              "Command: `python -m benchmarks.%s` (took %.0f s here)." % (
                  " ".join([name] + args), seconds), "",
              "| measurement | value | unit | target | met | details |",
              "|---|---|---|---|---|---|"]
    for r in rows:
      lines.append("| %s | %.3g | %s | %s | %s | %s |" % (
          r["name"], r["value"], r["unit"], r["target"], "yes" if r["ok"] else "**no**",
          r.get("details", "").replace("|", "/")))
    lines.append("")
  with open(OUTPUT, "w", encoding="utf-8") as f:
    f.write("\n".join(lines))
  print("wrote %s" % OUTPUT)


def _sections(path):
  """{module name: its lines} of an existing BENCHMARKS.md ("## name" up to the next one)."""
  if not os.path.exists(path):
    return {}
  with open(path, encoding="utf-8") as f:
    text = f.read().split("\n")
  sections, name = {}, None
  for line in text:
    if line.startswith("## "):
      name = line[3:].strip()
      sections[name] = []
    if name is not None:
      sections[name].append(line)
  for lines in sections.values():
    while lines and not lines[-1].strip():
      lines.pop()
    lines.append("")
  return sections

if __name__ == "__main__":
  main(sys.argv)
