"""Which `repro` source files a module can load: the code dependencies of a DVC stage.

Found statically (every `import` anywhere in a file, functions included, plus string
constants naming a `repro` module, which is how the registry imports its providers; a constant
`repro.pkg.*` names every public module of that package, as the registry reads it), so a
lazily imported module counts as much as one imported at the top. `dvc.yaml` must cover each
stage's set; `tests/test_dvc_deps.py` holds it to that, and

    python -m repro.utils.imports repro.stages.table     # a module's files, as dvc.yaml deps
    python -m repro.utils.imports --sync dvc.yaml        # rewrite every stage's code deps
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import yaml

PACKAGE = "repro"


def module_file(name: str, root: Path) -> Path | None:
    """The source file of module `name` under `root` (a package's __init__.py), or None."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root.joinpath(*parts)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported_names(path: Path) -> set[str]:
    """Module names a file imports, or names in string constants. The package uses absolute
    imports only; a relative one is an error here, so the set cannot silently miss files."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise ValueError(f"{path}:{node.lineno}: relative import; use `from {PACKAGE}...`")
            names.add(node.module or "")
            # `from repro.eval import nearest` imports a submodule, not a name
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and node.value.startswith(f"{PACKAGE}."):
            names.add(node.value)
    return names


def module_files(name: str, root: Path) -> set[Path]:
    """Every `repro` file that importing module `name` can load, its parent packages too."""
    root = Path(root)
    seen: set[Path] = set()
    todo = [name]
    while todo:
        name = todo.pop()
        if name.endswith(".*"):  # a registry provider: every public module of the package
            folder = root.joinpath(*name[:-2].split("."))
            todo += [f"{name[:-2]}.{p.stem}" for p in sorted(folder.glob("*.py"))
                     if not p.name.startswith("_")]
            name = name[:-2]
        parts = name.split(".")
        # importing a.b.c runs a/__init__.py and a/b/__init__.py first
        for k in range(1, len(parts) + 1):
            path = module_file(".".join(parts[:k]), root)
            if path is not None and path not in seen:
                seen.add(path)
                todo.extend(n for n in _imported_names(path) if n.split(".")[0] == PACKAGE)
    return seen


def covers(folder: Path) -> list[Path]:
    """The .py files a folder dep stands for: all below it but a `__main__.py`, the command
    line of its package, which `python -m` runs and no module imports. So a package whose
    other modules a stage all loads (the registry's providers: repro.models) is one folder
    dep, and a new module there (a variant) needs no dvc.yaml edit."""
    return sorted(p for p in folder.rglob("*.py") if p.name != "__main__.py")


def minimal_cover(files: set[Path], root: Path) -> list[str]:
    """The shortest list of paths (relative to root) that names exactly `files`: a folder
    where every .py file below it (`covers`) is in the set, else the files one by one."""
    root = Path(root)

    def cover(folder: Path) -> list[str]:
        below = covers(folder)
        if below and all(p in files for p in below) and folder != root / PACKAGE:
            # (a loaded __main__.py is in the folder dep too)
            return [folder.relative_to(root).as_posix()]
        out = [p.relative_to(root).as_posix() for p in sorted(folder.glob("*.py")) if p in files]
        for sub in sorted(d for d in folder.iterdir() if d.is_dir() and d.name != "__pycache__"):
            out += cover(sub)
        return out

    return cover(root / PACKAGE)


def stage_module(cmd: str, root: Path) -> str:
    """The module a stage command runs (`python -m pkg` runs pkg/__main__.py)."""
    match = re.search(r"python -m (\S+)", cmd)
    if not match:
        raise ValueError(f"stage command {cmd!r} does not run a `python -m` module")
    name = match.group(1)
    return f"{name}.__main__" if (Path(root) / Path(*name.split(".")) / "__main__.py").is_file() \
        else name


def sync_dvc_deps(dvc_file: Path, root: Path) -> list[str]:
    """Rewrite each stage's `repro/...` deps in dvc.yaml to the minimal cover of the code it
    loads, keeping every other line (comments, data deps) as it is; -> names of changed stages."""
    dvc_file = Path(dvc_file)
    stages = yaml.safe_load(dvc_file.read_text())["stages"]
    lines = dvc_file.read_text().splitlines(keepends=True)
    out, changed, stage, in_deps = [], [], None, False
    for line in lines:
        top = re.match(r"^  (\S[^:]*):\s*$", line)
        if top:
            stage, in_deps = top.group(1), False
        if re.match(r"^\s+deps:\s*$", line):
            in_deps, indent = True, None
            out.append(line)
            continue
        dep = re.match(r"^(\s+)- (\S+)\s*$", line) if in_deps else None
        if in_deps and not dep:
            in_deps = False
        if dep and dep.group(2).split("/")[0] == PACKAGE:
            if indent is None:  # the first code dep: put the whole cover here
                indent = dep.group(1)
                st = stages[stage].get("do", stages[stage])
                cover = minimal_cover(module_files(stage_module(st["cmd"], root), root), root)
                old = [d for d in st.get("deps", []) if isinstance(d, str)
                       and d.split("/")[0] == PACKAGE]
                if old != cover:
                    changed.append(stage)
                out += [f"{indent}- {c}\n" for c in cover]
            continue
        out.append(line)
    dvc_file.write_text("".join(out))
    return changed


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m repro.utils.imports", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("modules", nargs="*", help="modules to list, e.g. repro.stages.table")
    ap.add_argument("--sync", type=Path, metavar="DVC_YAML",
                    help="rewrite the code deps of every stage in this dvc.yaml")
    args = ap.parse_args(argv)
    root = Path(__file__).resolve().parents[2]
    if args.sync:
        changed = sync_dvc_deps(args.sync, root)
        print(f"{args.sync}: code deps updated for {', '.join(changed) or 'no stage'}")
    for name in args.modules:
        print(f"{name}:")
        for path in minimal_cover(module_files(name, root), root):
            print(f"  - {path}")


if __name__ == "__main__":
    main()
