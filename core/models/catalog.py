"""The registered models, read: finding them by name, the defaults, and whether an add-on fits
a base. No file is opened here (core.models.registry registers and hashes), so the GUI process and
the queue's checks use it without pulling in what inspects weights.
"""

from __future__ import annotations

import builtins
from dataclasses import asdict, dataclass, replace
from typing import Any

from core.catalog.records import timestamp
from core.models.kinds import FAMILY_DEFAULTS, FAMILY_NAMES, KIND_NAMES, KINDS, UNKNOWN_FAMILY_DEFAULTS, RenderDefaults, a_kind
from storage import models as model_store
from storage.errors import Conflict, LibraryError, NotFound
from storage.library import Library
from storage.schema import RegisteredModel

# Kinds that plug into a base checkpoint and must match its family.
ADD_ONS = ("lora", "controlnet", "t2i-adapter", "ip-adapter", "photomaker")


class IncompatibleModel(LibraryError):
    """An add-on made for another family than the checkpoint it would go with."""


@dataclass(frozen=True)
class ModelRecord:
    id: int
    name: str
    kind: str
    family: str | None
    path: str  # absolute
    sha256: str | None
    size: int | None
    control_type: str | None
    is_default: bool
    details: dict[str, Any]  # "format" plus what inspection found (see core.models.inspection)
    character: str | None  # the character a trained LoRA belongs to
    version: int | None
    created_at: str | None

    @classmethod
    def of(cls, model: RegisteredModel, character: str | None = None) -> ModelRecord:
        return cls(
            id=model.id,
            name=model.name,
            kind=model.kind,
            family=model.family,
            path=model.path,
            sha256=model.sha256,
            size=model.size,
            control_type=model.control_type,
            is_default=bool(model.is_default),
            details=dict(model.details or {}),
            character=character,
            version=model.version,
            created_at=timestamp(model.created_at),
        )

    @property
    def label(self) -> str:
        """SDXL LoRA 'name', as messages name a model."""
        family = f"{FAMILY_NAMES[self.family]} " if self.family else ""
        return f"{family}{KIND_NAMES.get(self.kind, self.kind)} '{self.name}'"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class ModelCatalog:
    def __init__(self, library: Library):
        self.library = library
        self.db = library.db

    # -- finding --------------------------------------------------------------------------
    def list(self, kind: str | None = None, family: str | None = None) -> list[ModelRecord]:
        if kind is not None and kind not in KINDS:
            raise LibraryError(f"unknown model kind '{kind}'; use one of: {', '.join(KINDS)}")
        with self.db.reading() as session:
            models = model_store.list_models(session, kind, family)
            names = model_store.character_names(session, {m.character_id for m in models if m.character_id})
            return [ModelRecord.of(m, names.get(m.character_id) if m.character_id else None) for m in models]

    def get(self, name: str) -> ModelRecord:
        with self.db.reading() as session:
            return self._record(session, model_store.find_model(session, name))

    def default(self, kind: str, family: str | None = None, control_type: str | None = None) -> ModelRecord | None:
        """The default of its kind (and family, control type): the one marked, else the only one."""
        candidates = self._candidates(kind, family, control_type)
        marked = [c for c in candidates if c.is_default]
        if marked:
            return marked[0]
        return candidates[0] if len(candidates) == 1 else None

    def require_default(self, kind: str, family: str | None = None, control_type: str | None = None) -> ModelRecord:
        found = self.default(kind, family, control_type)
        if found is not None:
            return found
        what = " ".join(w for w in (FAMILY_NAMES.get(family or ""), control_type, KIND_NAMES[kind]) if w)
        candidates = self._candidates(kind, family, control_type)
        if not candidates:
            option = f" --control-type {control_type}" if control_type else ""
            raise NotFound(f"no {what} is registered; register one with `model add PATH --kind {kind}{option}`")
        names = ", ".join(c.name for c in candidates)
        raise Conflict(f"{len(candidates)} {what}s are registered ({names}); pick one with `model default NAME`")

    # `builtins.list`: inside this class `list` is the method above.
    def _candidates(self, kind: str, family: str | None, control_type: str | None) -> builtins.list[ModelRecord]:
        with self.db.reading() as session:
            models = model_store.list_models(session, kind, family, control_type)
            if not models and family is not None:
                # Weights that do not say their family (tiny test models, odd exports) can still
                # serve; check_compatible compares their dimensions before anything loads.
                models = [m for m in model_store.list_models(session, kind, None, control_type) if m.family is None]
            return [ModelRecord.of(m) for m in models]

    def render_defaults(self, base: str | None = None) -> RenderDefaults:
        """Size, steps, CFG and sampler that suit the base (by name, else the default checkpoint):
        its own native size where its files say it, else its family's. A base that cannot be found
        gets the SD 1.5 defaults; the request is refused for it later, in words."""
        try:
            record = self.get(base) if base else self.default("checkpoint")
        except LibraryError:
            record = None
        return render_defaults_of(record)

    def check_compatible(self, record: ModelRecord, base_record: ModelRecord) -> None:
        """Refuses an add-on made for another family than the checkpoint, before any loading."""
        if base_record.kind != "checkpoint":
            raise LibraryError(f"'{base_record.name}' is {a_kind(base_record.kind)}, not a checkpoint")
        if record.kind not in ADD_ONS:
            return
        if record.family and base_record.family:
            if record.family != base_record.family:
                raise IncompatibleModel(
                    f"{record.label} cannot be used with {base_record.label}: it was made for "
                    f"{FAMILY_NAMES[record.family]} (see `model list --kind {record.kind} --family {base_record.family}`)"
                )
            return
        mine, theirs = record.details.get("cross_attention_dim"), base_record.details.get("cross_attention_dim")
        if mine and theirs and mine != theirs:
            raise IncompatibleModel(
                f"{record.label} cannot be used with {base_record.label}: it was made for a UNet with "
                f"cross-attention dim {mine}, the checkpoint's is {theirs}"
            )

    def _record(self, session, model: RegisteredModel) -> ModelRecord:
        names = model_store.character_names(session, {model.character_id} if model.character_id else set())
        return ModelRecord.of(model, names.get(model.character_id) if model.character_id else None)


def render_defaults_of(record: ModelRecord | None) -> RenderDefaults:
    if record is None or record.kind != "checkpoint":
        return UNKNOWN_FAMILY_DEFAULTS
    family = FAMILY_DEFAULTS.get(record.family or "", UNKNOWN_FAMILY_DEFAULTS)
    native = record.details.get("native_size")
    if isinstance(native, list) and len(native) == 2 and all(isinstance(v, int) and 64 <= v <= 4096 for v in native):
        return replace(family, width=native[0], height=native[1])
    return family
