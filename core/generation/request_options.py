"""A GenerationRequest from flag-named values: the CLI's `generate` flags, a batch file's items
and the studio's quick-generate box all build their requests here, so they mean the same thing."""

from __future__ import annotations

from typing import Any

from core.generation.request import GenerationRequest, IdentityEntry, RequestError, parse_control, parse_lora, parse_size
from core.models.kinds import UNKNOWN_FAMILY_DEFAULTS, RenderDefaults


def request_from_options(options: dict[str, Any], project: str | None = None, defaults: RenderDefaults | None = None) -> GenerationRequest:
    """One request from flag-named values (the CLI's or a batch item's). Size, steps, CFG and
    sampler not given come from `defaults`: the base's (ModelCatalog.render_defaults)."""
    defaults = defaults or UNKNOWN_FAMILY_DEFAULTS
    characters = options.get("character") or []
    if isinstance(characters, str):
        characters = [characters]
    if not options.get("prompt"):
        raise RequestError("--prompt is required")
    width, height = parse_size(str(options.get("size") or defaults.size))
    method = options.get("method") or "ip-adapter"
    identities = (
        ()
        if method == "none"
        else tuple(
            IdentityEntry(
                character=name,
                project=project,
                ip_adapter=options.get("ip_adapter"),
                scale=float(options.get("ip_scale", 0.7)),
                method=method,
            )
            for name in characters
        )
    )
    return GenerationRequest(
        prompt=options["prompt"],
        negative=options.get("negative") or "",
        base=options.get("base"),
        width=width,
        height=height,
        steps=int(_given(options, "steps", defaults.steps)),
        cfg=float(_given(options, "cfg", defaults.cfg)),
        seed=options.get("seed"),
        sampler=options.get("sampler") or defaults.sampler,
        count=int(options.get("count", 1)),
        characters=tuple(characters),
        identities=identities,
        loras=tuple(parse_lora(text) for text in options.get("lora") or []),
        controls=tuple(parse_control(text) for text in options.get("control") or []),
    )


def _given(options: dict[str, Any], key: str, default: Any) -> Any:
    value = options.get(key)
    return default if value is None else value
