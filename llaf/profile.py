"""Where an engine's time goes, operation by operation, from Futhark's own
profiler: the multicore engine records the wall time of each parallel
operation it runs (a map, a reduction, a copy) when it is made with
``LLAF_PROFILE=1`` in the environment (llaf/backend.py `Engine`), and
`operations` sums what it recorded since it was last asked, by operation and
by the lines of src/*.fut the operation came from.

    .venv/bin/python benchmarks/batch_steps.py --profile 15   # (sets LLAF_PROFILE itself)

The c backend records nothing (it runs no parallel operations), and the
OpenCL ones are not wired up here. An operation's time is its wall time,
both threads together; what runs between operations (sequential code, the
calls from Python) is in no operation. The runtime keeps every event until
it is asked for them: a tool for measuring, not for a server left running.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

ENV = "LLAF_PROFILE"
BACKENDS = ("multicore",)

# A whole parallel operation's event, as the multicore runtime names it
# (futhark_mc_segmap_task_N, futhark_mc_segred_nested_task_N,
# futhark_mc_copy_M_task_N, ...); its parts (`parloop` events, one a thread)
# are not counted again.
_TASK = re.compile(r"_task_\d+$")
_SOURCE = re.compile(r"(?:^|/)src/")
_KIND = re.compile(r"futhark_mc_([a-z]+)(?:_\d+)?(_nested)?_task_\d+$")


@dataclass(frozen=True)
class Operation:
    """One of the engine's parallel operations: its name in the generated C,
    the source line it computes (`where`, the innermost of the provenance the
    compiler gives) and the call it came through (`via`, the outermost), how
    many times it ran and its total wall time."""

    name: str
    where: str
    via: str
    calls: int
    seconds: float

    @property
    def kind(self) -> str:
        """What the operation is: a map (segmap), a reduction (segred), a
        scan (segscan) or a copy, "nested" where it ran inside another."""
        m = _KIND.match(self.name)
        return f"{m[1]}{' nested' if m[2] else ''}" if m else self.name


def operations(report: str) -> list[Operation]:
    """The operations of a Futhark profiling report (the JSON of
    `futhark_context_report`), the slowest first."""
    events: list[dict[str, Any]] = json.loads(report)["events"]
    calls: dict[str, int] = {}
    seconds: dict[str, float] = {}
    places: dict[str, tuple[str, str]] = {}
    for e in events:
        name = e["name"]
        if not _TASK.search(name):
            continue
        calls[name] = calls.get(name, 0) + 1
        seconds[name] = seconds.get(name, 0.0) + float(e["duration"]) / 1e6  # (microseconds)
        chain = [_SOURCE.split(part, maxsplit=1)[-1] for part in e.get("provenance", "unknown").split("->")]
        places[name] = (chain[-1], chain[0])
    ops = [Operation(name, *places[name], calls[name], seconds[name]) for name in calls]
    return sorted(ops, key=lambda op: -op.seconds)


def table(ops: list[Operation], per: int = 1, top: int | None = None) -> str:
    """`ops` as text, the time of each divided by `per` (e.g. the steps
    profiled), `top` of them."""
    rows = [f"{'ms':>9} {'calls':>7}  where (what, via)"]
    for op in ops[:top]:
        rows.append(f"{op.seconds / per * 1e3:9.3f} {op.calls / per:7.1f}  {op.where} ({op.kind}, via {op.via})")
    rows.append(f"{sum(op.seconds for op in ops) / per * 1e3:9.3f} {'':7}  all operations")
    return "\n".join(rows)
