"""The README's Python example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1
    exec(compile(blocks[0], str(README), "exec"), {})
    gaps = [float(m) for m in re.findall(r"= ([0-9.e+-]+)$", capsys.readouterr().out, flags=re.M)]
    assert gaps and max(gaps) < 1e-10
