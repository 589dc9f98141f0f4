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


def test_no_code_evaluation_or_unpickling_in_osilab():
    files = sorted((REPO / "osilab").rglob("*.py"))
    assert len(files) > 10
    problems = [p for f in files for p in _problems(f)]
    assert problems == []


def test_the_checker_catches_what_it_forbids(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import pickle\nimport yaml\nx = eval('1')\npickle.loads(b'')\nyaml.load('a')\n")
    assert len(_problems(bad)) == 4
