"""Which registered models a generation request uses, and whether they fit its base.

One place for the checks that refuse a request before anything loads: a LoRA, ControlNet or
IP-Adapter of another family than the base (an SDXL LoRA on SD 1.5), a name that is another kind
of model, InstantID on SD 1.5, a method with no adapter registered for it. `generate` runs them
while it prepares a render (core.generation.service); `generate --queue` and the studio's generate boxes
run them before queueing, so a request that cannot run is refused at once, not in the worker at
night. Light on purpose (no torch): the GUI process queues through this module.
"""

from __future__ import annotations

from core.generation.request import ControlEntry, GenerationRequest, IdentityEntry
from core.models import controlnet_union_layouts as union_layouts
from core.models.catalog import ModelCatalog, ModelRecord
from core.models.kinds import CONTROL_KINDS, a_kind
from storage.errors import LibraryError, NotFound


class ModelRefused(LibraryError):
    """A request's model that does not exist, is of the wrong kind, or does not fit its base."""


def is_face_adapter(adapter: ModelRecord) -> bool:
    """FaceID and InstantID adapters read a 512-d face identity, not CLIP image embeddings."""
    return str(adapter.details.get("variant", "")).startswith("faceid") or adapter.details.get("variant") == "instantid"


class RequestModels:
    def __init__(self, registry: ModelCatalog):
        self.registry = registry

    def check(self, request: GenerationRequest) -> ModelRecord:
        """Resolves every model the request names (or leaves to a default) against its base;
        returns the base. Raises ModelRefused (or the registry's LibraryError) naming the model."""
        base = self.base(request.base)
        for entry in request.loras:
            self.lora(entry.model, base)
        for detail in request.details:
            for entry in detail.loras:
                self.lora(entry.model, base)
        for identity in request.identities:
            self.identity_adapter(identity, base)
        controlnets = []
        for control in request.controls:
            if control.identity is None:  # InstantID's IdentityNet entries come with their adapter
                record = self.controlnet(control, base)
                self.control_type(control, record)
                controlnets += [record] if record.kind == "controlnet" else []
        self._one_union_alone(controlnets)
        return base

    @staticmethod
    def _one_union_alone(controlnets: list[ModelRecord]) -> None:
        """diffusers' union pipelines take one union ControlNet and no other ControlNet beside it."""
        union = next((r for r in controlnets if r.details.get("union")), None)
        other = next((r for r in controlnets if union is not None and r.name != union.name), None)
        if union is not None and other is not None:
            raise ModelRefused(
                f"union ControlNet '{union.name}' cannot run beside ControlNet '{other.name}'; "
                f"give the union model every control image instead (controls[].model)"
            )

    def base(self, name: str | None) -> ModelRecord:
        record = self.registry.get(name) if name else self.registry.require_default("checkpoint")
        if record.kind != "checkpoint":
            raise ModelRefused(f"'{record.name}' is a {record.kind}, not a checkpoint; pick a base with --base")
        return record

    def lora(self, name: str, base: ModelRecord) -> ModelRecord:
        record = self.registry.get(name)
        if record.kind != "lora":
            raise ModelRefused(f"'{name}' is a {record.kind}, not a LoRA")
        self.registry.check_compatible(record, base)
        return record

    def controlnet(self, entry: ControlEntry, base: ModelRecord) -> ModelRecord:
        """The ControlNet or T2I-Adapter a control entry names; a control type (openpose...) takes
        that type's ControlNet, else, when none is registered, a union ControlNet with a mode for
        the type, else that type's T2I-Adapter."""
        wanted = entry.model or entry.control_type
        if wanted is None:
            raise ModelRefused("a control entry needs a ControlNet or T2I-Adapter name, or a control type (openpose, depth...)")
        try:
            record = self.registry.get(wanted)
        except LibraryError:
            # Not a registered name: read it as a control type and take that type's model.
            record = self._control_of_type(wanted, base)
        if record.kind not in CONTROL_KINDS:
            raise ModelRefused(f"'{record.name}' is {a_kind(record.kind)}, not a ControlNet or T2I-Adapter (controls[].model)")
        self.registry.check_compatible(record, base)
        return record

    def control_type(self, entry: ControlEntry, record: ModelRecord) -> str | None:
        """The control type the entry's image is: the model's own, or for a union ControlNet the
        entry's (its control_type, else the type its model field named), which must be one of the
        union model's modes."""
        if not record.details.get("union"):
            return record.control_type
        wanted = entry.control_type or (entry.model if entry.model != record.name else None)
        served = ", ".join(record.details.get("control_types", []))
        if wanted is None:
            raise ModelRefused(
                f"union ControlNet '{record.name}' serves several control types ({served}); say which this image is (controls[].control_type)"
            )
        if union_layouts.control_mode(wanted, record.details) is None:
            raise ModelRefused(
                f"union ControlNet '{record.name}' has no control mode for '{wanted}'; it serves {served} (controls[].control_type)"
            )
        return wanted

    def _control_of_type(self, control_type: str, base: ModelRecord) -> ModelRecord:
        try:
            return self.registry.require_default("controlnet", family=base.family, control_type=control_type)
        except NotFound as no_controlnet:
            # A union ControlNet, then a T2I-Adapter, serve only where no ControlNet of the type is
            # registered: the ControlNet, where there is one, is what the user has been getting.
            unions = [
                r
                for r in self.registry.list(kind="controlnet", family=base.family)
                if r.details.get("union") and union_layouts.control_mode(control_type, r.details) is not None
            ]
            if unions:
                return next((r for r in unions if r.is_default), unions[0])
            try:
                return self.registry.require_default("t2i-adapter", family=base.family, control_type=control_type)
            except NotFound:
                raise no_controlnet from None

    def identity_adapter(self, entry: IdentityEntry, base: ModelRecord) -> ModelRecord:
        """The named IP-Adapter, else the default one of the base's family that fits the method;
        for PhotoMaker, the named or default PhotoMaker model."""
        if entry.method == "photomaker":
            return self.photomaker(entry, base)
        if entry.method == "instantid" and base.family != "sdxl":
            raise ModelRefused(f"InstantID works on SDXL checkpoints only; '{base.name}' is {base.family}")
        wants_face = entry.method in ("faceid", "instantid")
        if entry.ip_adapter:
            adapter = self.registry.get(entry.ip_adapter)
            if adapter.kind != "ip-adapter":
                raise ModelRefused(f"'{adapter.name}' is a {adapter.kind}, not an IP-Adapter")
            if is_face_adapter(adapter) != wants_face:
                raise ModelRefused(
                    f"'{adapter.name}' is a {adapter.details.get('variant', 'base')} IP-Adapter, which does not fit --method {entry.method}"
                )
            self.registry.check_compatible(adapter, base)
            return adapter
        candidates = [a for a in self.registry.list(kind="ip-adapter") if is_face_adapter(a) == wants_face]
        same_family = [a for a in candidates if a.family in (base.family, None)]
        if entry.method == "faceid":
            same_family = [a for a in same_family if str(a.details.get("variant")).startswith("faceid")]  # not InstantID's
        if not same_family:
            needs = {
                "ip-adapter": "an IP-Adapter (e.g. ip-adapter-plus_sd15.safetensors with its image_encoder folder)",
                "faceid": "an IP-Adapter FaceID file (e.g. ip-adapter-faceid_sd15.bin, with --allow-pickle) and face models (--kind face-models)",
                "instantid": "the InstantID ip-adapter and IdentityNet ControlNet, and face models",
            }[entry.method]
            raise ModelRefused(f"--method {entry.method} on a {base.family} base needs {needs}; register it with `model add`")
        defaults = [a for a in same_family if a.is_default]
        adapter = (defaults or same_family)[0]
        self.registry.check_compatible(adapter, base)
        return adapter

    def photomaker(self, entry: IdentityEntry, base: ModelRecord) -> ModelRecord:
        if base.family != "sdxl":
            raise ModelRefused(f"PhotoMaker works on SDXL checkpoints only; '{base.name}' is {base.family} (--base)")
        if entry.ip_adapter:
            record = self.registry.get(entry.ip_adapter)
            if record.kind != "photomaker":
                raise ModelRefused(f"'{record.name}' is {a_kind(record.kind)}, not a PhotoMaker (identities[].ip_adapter)")
        else:
            found = self.registry.list(kind="photomaker", family=base.family)
            if not found:
                raise ModelRefused(
                    "--method photomaker needs a PhotoMaker file (photomaker-v1.bin or photomaker-v2.bin with --allow-pickle, "
                    "or its .safetensors); register it with `model add`"
                )
            record = next((r for r in found if r.is_default), found[0])
        self.registry.check_compatible(record, base)
        if record.details.get("version") == "v2" and not entry.character:
            raise ModelRefused(
                f"PhotoMaker v2 '{record.name}' reads a character's face identity; name the character (identities[].character)"
            )
        return record


__all__ = ["ModelRefused", "RequestModels", "is_face_adapter"]
