"""A playbook's steps compiled to a flat program: a run's position is one index (``pc``).

A ``branch`` becomes a conditional jump over its arms (``then_pc``/``else_pc``, ``-1`` exits
the run) and each ``then`` arm ends with a ``goto`` past the ``else`` arm. Every instruction
keeps the step's ``path`` in the file (``2``, ``2.then.0``), which the counters use.
"""

from __future__ import annotations

from typing import Any

EXIT = -1


def compile_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    program: list[dict[str, Any]] = []
    _emit(program, steps, "")
    return program


def _emit(program: list[dict[str, Any]], steps: list[dict[str, Any]], prefix: str) -> None:
    for i, step in enumerate(steps):
        path = f"{prefix}{i}"
        if step["kind"] != "branch":
            program.append({**step, "path": path})
            continue
        at = len(program)
        instr: dict[str, Any] = {"kind": "branch", "if": step["if"], "path": path}
        program.append(instr)
        then, other = step.get("then", "continue"), step.get("else", "continue")
        gotos: list[int] = []
        if then == "exit":
            instr["then_pc"] = EXIT
        elif isinstance(then, list):
            instr["then_pc"] = at + 1
            _emit(program, then, f"{path}.then.")
            gotos.append(len(program))
            program.append({"kind": "goto", "path": f"{path}.end"})
        if other == "exit":
            instr["else_pc"] = EXIT
        elif isinstance(other, list):
            instr["else_pc"] = len(program)
            _emit(program, other, f"{path}.else.")
        end = len(program)
        instr.setdefault("then_pc", end)
        instr.setdefault("else_pc", end)
        for g in gotos:
            program[g]["to"] = end
