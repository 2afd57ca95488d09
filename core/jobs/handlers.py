"""The handlers a worker runs, resolved from the job-kind table (core/jobs/kinds.py).

`HANDLERS` maps a kind to its `HandlerSpec` (core/jobs/context.py says what a handler keeps to).
Listing it imports nothing; looking a kind up imports that kind's handler module the first time,
so a worker pays only for the kinds it runs. `load_handlers` resolves every kind at once, as the
worker does when it starts, and reports the ones that cannot load (a worker still runs the rest).
`register_handler` adds a kind outside the table: the tests' stand-in jobs.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from core.jobs.context import HandlerSpec
from core.jobs.files import write_json_atomically
from core.jobs.kinds import JOB_KINDS, JobKind


class HandlerTable(Mapping[str, HandlerSpec]):
    def __init__(self) -> None:
        self._resolved: dict[str, HandlerSpec] = {}
        self._extra: dict[str, HandlerSpec] = {}
        self._broken: dict[str, str] = {}  # kind -> why its module could not be loaded

    def register(self, spec: HandlerSpec) -> HandlerSpec:
        if not spec.kind or len(spec.kind) > 32:
            raise ValueError(f"job kind must be 1 to 32 characters, got {spec.kind!r}")
        self._extra[spec.kind] = spec
        return spec

    def __getitem__(self, kind: str) -> HandlerSpec:
        if kind in self._extra:
            return self._extra[kind]
        if kind in self._broken or kind not in JOB_KINDS:
            raise KeyError(kind)
        if kind not in self._resolved:
            self._resolved[kind] = _resolve(JOB_KINDS[kind])
        return self._resolved[kind]

    def __iter__(self) -> Iterator[str]:
        yield from (kind for kind in JOB_KINDS if kind not in self._broken and kind not in self._extra)
        yield from self._extra

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def interactive(self) -> set[str]:
        """Kinds the user waits for; read from the table, so nothing is imported."""
        extra = {kind for kind, spec in self._extra.items() if spec.interactive}
        return {kind for kind in self if kind in JOB_KINDS and JOB_KINDS[kind].interactive} | extra

    def load_all(self) -> list[str]:
        problems = []
        for kind in JOB_KINDS:
            if kind in self._extra or kind in self._broken:
                continue
            try:
                self[kind]
            except Exception as exc:  # noqa: BLE001 - a broken package must not stop the other kinds
                self._broken[kind] = f"{type(exc).__name__}: {exc}"
                problems.append(f"{kind} jobs cannot run here: {JOB_KINDS[kind].handler} could not be loaded ({self._broken[kind]})")
        return problems


def _resolve(kind: JobKind) -> HandlerSpec:
    module_name, _, function = kind.handler.partition(":")
    handler = getattr(importlib.import_module(module_name), function)
    return HandlerSpec(kind.name, handler, interactive=kind.interactive)


HANDLERS = HandlerTable()


def register_handler(spec: HandlerSpec) -> HandlerSpec:
    """Adds (or replaces) the handler of a kind outside the table (the tests' stand-in jobs)."""
    return HANDLERS.register(spec)


def interactive_kinds() -> set[str]:
    return HANDLERS.interactive()


def load_handlers() -> list[str]:
    """Imports every kind's handler module; one line per kind that cannot run here."""
    return HANDLERS.load_all()


__all__ = ["HANDLERS", "HandlerTable", "register_handler", "interactive_kinds", "load_handlers", "write_json_atomically"]
