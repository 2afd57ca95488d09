"""The model registry: the weights a user has on disk, registered by name, with what they are.

`add` inspects the file (core.models.inspection) and records kind, family, format and details, so
generation can pick defaults and refuse a wrong-family combination before loading anything.
The reads are core.models.catalog's; registering reaches torch only for a pickle file the user
allowed, which is why the GUI registers through the CLI in a child process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.models import layouts as model_layouts
from core.models.catalog import ADD_ONS, IncompatibleModel, ModelCatalog, ModelRecord  # noqa: F401 - re-exported
from core.models.hashing import path_signature, sha256_of_path
from core.models.inspection import ModelInspection, inspect_model_path
from core.models.kinds import CONTROL_KINDS, CONTROL_TYPES, FAMILY_NAMES, KIND_NAMES, a_kind
from core.models.weights_files import ModelFileError
from storage import models as model_store
from storage.errors import Conflict, LibraryError
from storage.schema import RegisteredModel


class ModelRegistry(ModelCatalog):
    """The catalog's reads, plus registering: inspecting and hashing files (core.models.inspection)."""

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
        fields = self.describe(target, kind, control_type, allow_pickle, config_dir)
        with self.db.writing() as session:
            model = self.create(session, fields, name)
            return ModelRecord.of(model)

    def describe(
        self,
        target: Path,
        kind: str = "auto",
        control_type: str | None = None,
        allow_pickle: bool = False,
        config_dir: Path | str | None = None,
    ) -> dict[str, Any]:
        """What `create` records of the file at `target` (absolute): it inspected and hashed, done
        outside any transaction because hashing takes a while."""
        inspection = inspect_model_path(target, kind, allow_pickle, control_type=control_type)
        if control_type is not None and inspection.kind not in CONTROL_KINDS:
            raise LibraryError(f"--control-type applies to ControlNets and T2I-Adapters only; {target} is {a_kind(inspection.kind)}")
        details = {"format": inspection.format, **inspection.details}
        found_control = details.pop("control_type", None)
        if config_dir is not None:
            details["config_dir"] = str(self._check_config_dir(Path(config_dir), inspection, target))
        elif inspection.kind == "controlnet" and target.is_file() and details.get("controlnet_config") is None:
            raise ModelFileError(model_layouts.unmatched_controlnet(target, details.get("architecture", "?")))
        size, mtime = path_signature(target)
        # Hashed now, streamed, because `model show` and image metadata want it; cached after.
        digest = sha256_of_path(target)
        return {
            "kind": inspection.kind,
            "family": inspection.family,
            "path": str(target),
            "sha256": digest,
            "size": size,
            "mtime": mtime,
            "control_type": found_control,
            "details": details,
        }

    def create(self, session, fields: dict[str, Any], name: str | None = None) -> RegisteredModel:
        """The row for what `describe` found, in the caller's transaction."""
        target = Path(fields["path"])
        self._refuse_registered(target, session)
        name = name if name is not None else model_store.unique_model_name(session, _default_name(target))
        return model_store.create_model(session, name=name, **fields)

    def _refuse_registered(self, target: Path, session=None) -> None:
        if session is None:
            with self.db.reading() as reading:
                self._refuse_registered(target, reading)
            return
        existing = model_store.find_model_by_path(session, str(target))
        if existing is not None:
            raise Conflict(f"{target} is already registered as '{existing.name}' (see `model show {existing.name}`)")

    @staticmethod
    def _check_config_dir(folder: Path, inspection: ModelInspection, target: Path) -> Path:
        """A diffusers folder whose configs a single-file checkpoint (the pipeline folder) or
        single-file ControlNet (a folder with its config.json) is loaded with."""
        if inspection.kind not in ("checkpoint", "controlnet") or not target.is_file():
            raise LibraryError("--config applies to single-file checkpoints and ControlNets only")
        folder = folder.expanduser().resolve()
        config = inspect_model_path(folder, inspection.kind)
        if bool(config.details.get("union")) != bool(inspection.details.get("union")):
            union, plain = (target, folder) if inspection.details.get("union") else (folder, target)
            raise LibraryError(f"--config {folder}: {union} is a union ControlNet and {plain} is not; give the config of a matching one")
        if config.family != inspection.family:
            raise IncompatibleModel(
                f"--config {folder} is for {FAMILY_NAMES.get(config.family or '', 'an unknown family')} but the "
                f"{KIND_NAMES[inspection.kind]} is {FAMILY_NAMES.get(inspection.family or '', 'of an unknown family')}"
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
            if model.kind not in CONTROL_KINDS:
                raise LibraryError(f"'{name}' is {a_kind(model.kind)}; only ControlNets and T2I-Adapters have a control type")
            if (model.details or {}).get("union"):
                raise LibraryError(f"'{name}' is a union ControlNet: it serves several control types, named in each control entry")
            if model.control_type != control_type:
                # It was the default for its old type; it joins the new type as a candidate.
                model.is_default = False
            model.control_type = control_type
            model.details = {**model.details, "control_type_source": "given"}
            session.flush()
            return self._record(session, model)

    # -- checks and companions ------------------------------------------------------------
    def sha256_of(self, record: ModelRecord) -> str:
        """The sha256 of the file (or folder), hashed again only when its size or mtime changed."""
        path = Path(record.path)
        if not path.exists():
            raise ModelFileError(f"{path}: the file of model '{record.name}' is gone (`model remove {record.name}` forgets it)")
        size, mtime = path_signature(path)
        with self.db.reading() as session:
            model = model_store.find_model(session, record.name)
            if model.sha256 and model.size == size and model.mtime == mtime:
                return model.sha256
        digest = sha256_of_path(path)
        with self.db.writing() as session:
            model = model_store.find_model(session, record.name)
            model.sha256, model.size, model.mtime = digest, size, mtime
        return digest

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
                found = inspect_model_path(folder, "image-encoder")
            except ModelFileError:
                continue
            if fits(found.details):
                return folder
        return None


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
