"""A GenerationRequest from flag-named values: the CLI's `generate` flags, a batch file's items
and the studio's quick-generate box all build their requests here, so they mean the same thing."""

from __future__ import annotations

from typing import Any

from core.generation.request import GenerationRequest, IdentityEntry, RequestError, parse_control, parse_lora, parse_size


def request_from_options(options: dict[str, Any], project: str | None = None) -> GenerationRequest:
    """One request from flag-named values (the CLI's or a batch item's)."""
    characters = options.get("character") or []
    if isinstance(characters, str):
        characters = [characters]
    if not options.get("prompt"):
        raise RequestError("--prompt is required")
    width, height = parse_size(str(options.get("size") or "512x512"))
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
        steps=int(options.get("steps", 30)),
        cfg=float(options.get("cfg", 7.0)),
        seed=options.get("seed"),
        sampler=options.get("sampler") or "DPM++ 2M Karras",
        count=int(options.get("count", 1)),
        characters=tuple(characters),
        identities=identities,
        loras=tuple(parse_lora(text) for text in options.get("lora") or []),
        controls=tuple(parse_control(text) for text in options.get("control") or []),
    )
