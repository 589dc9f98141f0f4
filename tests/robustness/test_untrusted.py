"""Untrusted files: nothing in osilab evaluates or unpickles data from a capture.

A static check over osilab's own source: no eval/exec/compile of data, no pickle or marshal
loads, no yaml.load without the safe loader, and no shell=True subprocesses.
"""

from __future__ import annotations

import ast

from shared_paths import REPO

FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_ATTRS = {("pickle", "loads"), ("pickle", "load"), ("marshal", "loads"), ("marshal", "load"),
                   ("yaml", "load"), ("yaml", "unsafe_load"), ("yaml", "full_load"), ("shelve", "open"),
                   ("dill", "loads"), ("cloudpickle", "loads")}


def _problems(path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                found.append(f"{path}:{node.lineno}: {func.id}()")
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                    and (func.value.id, func.attr) in FORBIDDEN_ATTRS:
                found.append(f"{path}:{node.lineno}: {func.value.id}.{func.attr}()")
            for kw in node.keywords:
                if kw.arg == "shell" and isinstance(kw.value, ast.Constant) and kw.value.value is True:
                    found.append(f"{path}:{node.lineno}: shell=True")
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            if any(n and n.split(".")[0] in ("pickle", "marshal", "shelve", "dill") for n in names):
                found.append(f"{path}:{node.lineno}: imports a deserialiser that can run code")
    return found


#: The one place osilab compiles code, and why it is no evaluation of data: quick_init
#: writes a frozen dataclass's ``__init__`` from the class's own field names (checked to be
#: identifiers) at import, as the standard library's dataclasses does; no byte of a capture
#: or of a configuration reaches it.
CODE_WRITERS = {"osilab/streams/frozen.py": ("quick_init", ["compile()", "exec()"])}


def test_no_code_evaluation_or_unpickling_in_osilab():
    files = sorted((REPO / "osilab").rglob("*.py"))
    assert len(files) > 10
    problems = []
    for path in files:
        found = _problems(path)
        allowed = CODE_WRITERS.get(path.relative_to(REPO).as_posix())
        if allowed is not None:  # exactly the calls named, inside the function named
            function, calls = allowed
            tree = ast.parse(path.read_text(), filename=str(path))
            lines = next(range(node.lineno, node.end_lineno + 1) for node in ast.walk(tree)
                         if isinstance(node, ast.FunctionDef) and node.name == function)  # fmt: skip
            inside = [p for p in found if int(p.split(":")[1]) in lines]
            assert sorted(p.rsplit(": ", 1)[1] for p in inside) == calls
            found = [p for p in found if p not in inside]
        problems += found
    assert problems == []


def test_the_checker_catches_what_it_forbids(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import pickle\nimport yaml\nx = eval('1')\npickle.loads(b'')\nyaml.load('a')\n")
    assert len(_problems(bad)) == 4
