"""The README's Python example runs as written, and its method table lists every method."""

from __future__ import annotations

import re
from pathlib import Path

from erasekit.unlearn import available_methods

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_examples_run(capsys, tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2, "the README must contain the unlearning and concept examples"
    monkeypatch.chdir(tmp_path)  # examples may write files
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "faster than retraining" in out and "retrain " in out
    assert (tmp_path / "gender.safetensors").exists()


def test_every_method_is_documented():
    text = README.read_text()
    for name in available_methods():
        assert f"| `{name}` |" in text, f"README method table lacks {name}"
