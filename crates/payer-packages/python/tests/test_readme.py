"""The README snippets for agent builders compile and name only what the package exports."""

import ast
import os
import re

import pytest

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
READMES = [os.path.join(ROOT, "README.md"), os.path.join(ROOT, "crates", "payer-packages", "python", "README.md")]


def snippets():
    for path in READMES:
        with open(path) as f:
            text = f.read()
        for i, block in enumerate(re.findall(r"```python\n(.*?)```", text, re.S)):
            yield pytest.param(block, id=f"{os.path.relpath(path, ROOT)}#{i}")


@pytest.mark.parametrize("block", list(snippets()))
def test_snippet(block):
    tree = ast.parse(block, mode="exec", feature_version=(3, 11), type_comments=False)
    compile(block, "<readme>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("aep2_payer", "x402"):
            module = __import__(node.module, fromlist=[a.name for a in node.names])
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module}.{alias.name}"


def test_root_readme_has_the_agent_builder_snippet():
    assert any("payer.httpx_client(client)" in p.values[0] for p in snippets())
