"""What loading and using the engine does to the process around it: no
change to its floating point, no output or abort at exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from llaf.assets import default_model_path

from .conftest import BACKENDS_UNDER_TEST

# The reproduction: a cache kept alive by a closure until shutdown.
SCRIPT = """
import numpy as np, llaf
p = llaf.init({model!r}, backend={backend!r}, progress=False)
def make():
    state = {{}}
    class Eng:
        def prefill(self, ids):
            lg, state["cache"] = llaf.prefill(p, ids); return int(np.argmax(lg))
        def step(self, t):
            return int(np.argmax(llaf.step(state["cache"], t)))
    return Eng()
e = make(); t = e.prefill([1, 2, 3, 4])
for _ in range(3): t = e.step(t)
tiny = np.float64(1e-310)
print(1e-310 > 0, bool(tiny > 0), bool(np.float32(1e-40) > 0))
"""


@pytest.mark.parametrize("backend", BACKENDS_UNDER_TEST)
def test_engine_leaves_the_process_alone(backend: str) -> None:
    """Subnormal numbers stay non-zero after the engine is loaded (no
    flush-to-zero from -ffast-math), and the process exits quietly and
    successfully with engine objects still alive at shutdown."""
    code = textwrap.dedent(SCRIPT.format(model=str(default_model_path()), backend=backend))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "True True True\n", "")
