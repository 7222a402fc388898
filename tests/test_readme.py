"""The README's Python examples run as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_two_layer_example_agrees(capsys):
    exec(compile(BLOCKS[0], str(README), "exec"), {})
    gaps = [float(m) for m in re.findall(r"= ([0-9.e+-]+)$", capsys.readouterr().out, flags=re.M)]
    assert gaps and max(gaps) < 1e-10


def test_readme_optimizer_example_trains(capsys):
    assert len(BLOCKS) == 3
    exec(compile(BLOCKS[1], str(README), "exec"), {})
    first, last = map(float, re.findall(r"training loss ([0-9.]+)", capsys.readouterr().out))
    assert last < 0.1 * first


def test_readme_curvature_example_agrees(capsys):
    exec(compile(BLOCKS[2], str(README), "exec"), {})
    out = capsys.readouterr().out
    assert float(re.search(r"max gap = ([0-9.e+-]+)", out)[1]) < 1e-12
    assert re.search(r"^8 Hessian-vector products for a diagonal of 1482 entries$", out, re.M)
