"""The model registry: the weights a user has on disk, registered by name, with what they are.

`add` inspects the file (core.model_files) and records kind, family, format and details, so
generation can pick defaults and refuse a wrong-family combination before loading anything.
Light on purpose (no torch): the GUI process registers models too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core import model_files, model_layouts
from core.model_files import CONTROL_TYPES, FAMILY_NAMES, KIND_NAMES, KINDS, ModelFileError, a_kind
from core.records import timestamp
from storage import models as model_store
from storage.errors import Conflict, LibraryError, NotFound
from storage.library import Library
from storage.schema import RegisteredModel

# Kinds that plug into a base checkpoint and must match its family.
ADD_ONS = ("lora", "controlnet", "ip-adapter")


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
    details: dict[str, Any]  # "format" plus what inspection found (see core.model_files)
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


class ModelRegistry:
    def __init__(self, library: Library):
        self.library = library
        self.db = library.db

    # -- registering ----------------------------------------------------------------------
    def add(
        self,
        path: Path | str,
        name: str | None = None,
        kind: str = "auto",
        control_type: str | None = None,
        allow_pickle: bool = False,
        config_dir: Path | str | None = None,
    ) -> ModelRecord:
        # Absolute and resolved: the registry outlives the shell's working folder, and one file
        # reached through two spellings is still one file.
        target = Path(path).expanduser().resolve()
        self._refuse_registered(target)
        inspection = model_files.inspect_model_path(target, kind, allow_pickle, control_type=control_type)
        if control_type is not None and inspection.kind != "controlnet":
            raise LibraryError(f"--control-type applies to ControlNets only; {target} is {a_kind(inspection.kind)}")
        details = {"format": inspection.format, **inspection.details}
        found_control = details.pop("control_type", None)
        if config_dir is not None:
            details["config_dir"] = str(self._check_config_dir(Path(config_dir), inspection, target))
        elif inspection.kind == "controlnet" and target.is_file() and details.get("controlnet_config") is None:
            raise model_files.ModelFileError(model_layouts.unmatched_controlnet(target, details.get("architecture", "?")))
        size, mtime = model_files.path_signature(target)
        # Hashed now, streamed, because `model show` and image metadata want it; cached after.
        digest = model_files.sha256_of_path(target)
        with self.db.writing() as session:
            self._refuse_registered(target, session)
            model = model_store.create_model(
                session,
                name=name if name is not None else model_store.unique_model_name(session, _default_name(target)),
                kind=inspection.kind,
                family=inspection.family,
                path=str(target),
                sha256=digest,
                size=size,
                mtime=mtime,
                control_type=found_control,
                details=details,
            )
            return ModelRecord.of(model)

    def _refuse_registered(self, target: Path, session=None) -> None:
        if session is None:
            with self.db.reading() as reading:
                self._refuse_registered(target, reading)
            return
        existing = model_store.find_model_by_path(session, str(target))
        if existing is not None:
            raise Conflict(f"{target} is already registered as '{existing.name}' (see `model show {existing.name}`)")

    @staticmethod
    def _check_config_dir(folder: Path, inspection: model_files.ModelInspection, target: Path) -> Path:
        """A diffusers folder whose configs a single-file checkpoint (the pipeline folder) or
        single-file ControlNet (a folder with its config.json) is loaded with."""
        if inspection.kind not in ("checkpoint", "controlnet") or not target.is_file():
            raise LibraryError("--config applies to single-file checkpoints and ControlNets only")
        folder = folder.expanduser().resolve()
        config = model_files.inspect_model_path(folder, inspection.kind)
        if config.family != inspection.family:
            raise IncompatibleModel(
                f"--config {folder} is for {FAMILY_NAMES.get(config.family, 'an unknown family')} but the "
                f"{KIND_NAMES[inspection.kind]} is {FAMILY_NAMES.get(inspection.family, 'of an unknown family')}"
            )
        return folder

    def remove(self, name: str) -> ModelRecord:
        """Forgets the registration; the user's file stays where it is."""
        with self.db.writing() as session:
            model = model_store.find_model(session, name)
            record = self._record(session, model)
            model_store.delete_model(session, model)
            return record

    def set_default(self, name: str) -> ModelRecord:
        with self.db.writing() as session:
            model = model_store.find_model(session, name)
            model_store.make_default(session, model)
            return self._record(session, model)

    def set_control_type(self, name: str, control_type: str) -> ModelRecord:
        if control_type not in CONTROL_TYPES:
            raise LibraryError(f"unknown control type '{control_type}'; use one of: {', '.join(CONTROL_TYPES)}")
        with self.db.writing() as session:
            model = model_store.find_model(session, name)
            if model.kind != "controlnet":
                raise LibraryError(f"'{name}' is {a_kind(model.kind)}; only ControlNets have a control type")
            if model.control_type != control_type:
                # It was the default for its old type; it joins the new type as a candidate.
                model.is_default = False
            model.control_type = control_type
            model.details = {**model.details, "control_type_source": "given"}
            session.flush()
            return self._record(session, model)

    # -- finding --------------------------------------------------------------------------
    def list(self, kind: str | None = None, family: str | None = None) -> list[ModelRecord]:
        if kind is not None and kind not in KINDS:
            raise LibraryError(f"unknown model kind '{kind}'; use one of: {', '.join(KINDS)}")
        with self.db.reading() as session:
            models = model_store.list_models(session, kind, family)
            names = model_store.character_names(session, {m.character_id for m in models if m.character_id})
            return [ModelRecord.of(m, names.get(m.character_id)) for m in models]

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

    def _candidates(self, kind: str, family: str | None, control_type: str | None) -> list[ModelRecord]:
        with self.db.reading() as session:
            models = model_store.list_models(session, kind, family, control_type)
            if not models and family is not None:
                # Weights that do not say their family (tiny test models, odd exports) can still
                # serve; check_compatible compares their dimensions before anything loads.
                models = [m for m in model_store.list_models(session, kind, None, control_type) if m.family is None]
            return [ModelRecord.of(m) for m in models]

    # -- checks and companions ------------------------------------------------------------
    def sha256_of(self, record: ModelRecord) -> str:
        """The sha256 of the file (or folder), hashed again only when its size or mtime changed."""
        path = Path(record.path)
        if not path.exists():
            raise ModelFileError(f"{path}: the file of model '{record.name}' is gone (`model remove {record.name}` forgets it)")
        size, mtime = model_files.path_signature(path)
        with self.db.reading() as session:
            model = model_store.find_model(session, record.name)
            if model.sha256 and model.size == size and model.mtime == mtime:
                return model.sha256
        digest = model_files.sha256_of_path(path)
        with self.db.writing() as session:
            model = model_store.find_model(session, record.name)
            model.sha256, model.size, model.mtime = digest, size, mtime
        return digest

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

    def image_encoder_for(self, ip_adapter_record: ModelRecord) -> Path | None:
        """The CLIP image encoder folder an IP-Adapter needs: a registered one of the width it
        consumes, else an `image_encoder/` folder near the file as h94/IP-Adapter lays them out."""
        details = ip_adapter_record.details
        if ip_adapter_record.kind != "ip-adapter":
            raise LibraryError(f"'{ip_adapter_record.name}' is not an IP-Adapter")
        if not details.get("needs_image_encoder", True):
            return None
        wanted = details.get("image_embed_dim")
        # A base adapter reads CLIP's projected image embedding; the others its hidden states.
        width_key = "projection_dim" if details.get("image_encoder_output") == "image_embeds" else "hidden_size"

        def fits(encoder_details: dict[str, Any]) -> bool:
            return wanted is None or encoder_details.get(width_key) == wanted

        registered = sorted(self.list("image-encoder"), key=lambda r: (not r.is_default, r.name))
        for encoder in registered:
            if fits(encoder.details) and Path(encoder.path).is_dir():
                return Path(encoder.path)
        for folder in _encoder_folders_near(Path(ip_adapter_record.path)):
            try:
                found = model_files.inspect_model_path(folder, "image-encoder")
            except ModelFileError:
                continue
            if fits(found.details):
                return folder
        return None

    def _record(self, session, model: RegisteredModel) -> ModelRecord:
        names = model_store.character_names(session, {model.character_id} if model.character_id else set())
        return ModelRecord.of(model, names.get(model.character_id))


def _default_name(target: Path) -> str:
    return target.name if target.is_dir() else target.stem


def _encoder_folders_near(adapter: Path) -> list[Path]:
    """models/ip-adapter_sd15.safetensors uses models/image_encoder/; sdxl_models/
    ip-adapter-plus_sdxl_vit-h.safetensors uses the ViT-H one in ../models/image_encoder/."""
    here, above = adapter.parent, adapter.parent.parent
    candidates = [here / "image_encoder", above / "image_encoder", *sorted(above.glob("*/image_encoder"))]
    seen: list[Path] = []
    for folder in candidates:
        if folder.is_dir() and folder not in seen:
            seen.append(folder)
    return seen
