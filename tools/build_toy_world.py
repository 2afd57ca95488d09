"""Builds the "toy world" model set: tiny models, trained on CPU, whose pictures mean something.

    python -m tools.build_toy_world OUT_DIR [--quick] [--seed N] [--threads N]

The demo's random-weight models (core/demo/tiny_models.py) draw coloured noise. These have the
same on-disk formats and architectures (a diffusers SD1.5-style checkpoint folder, an IP-Adapter
.safetensors in the tencent-ailab layout with image_encoder/ beside it, an OpenPose ControlNet
folder, a kohya LoRA), so GenerationService, the ControlNet, IP-Adapter and regional-prompt code
run on them unchanged, but they are trained on the toy world (core/demo/toy_world.py): flat-colour
figures drawn from OpenPose skeletons, where a character is its colours. So:
- an OpenPose control image gives a figure in that pose;
- an IP-Adapter reference of a character gives a figure in that character's colours;
- in a scene, masked identities give each figure its own character's colours;
- the LoRA turns the background a warm tint.

Stages, each seeded: the image encoder (CLIP vision, learns to read the three colours of a
reference drawing), the VAE (4x down, 4 latent channels, near-lossless on flat colours), then the
UNet, ControlNet and IP-Adapter together on (references, pose image, figure) triples, then the
LoRA. The text encoder stays the tiny random one: text does not steer the toy world.

Status: the demo uses the set in resources/toy-world (toy-world.json there says how it was built
and what it measured). On held-out poses and unseen characters (`--evaluate`): poses are followed
well (figure-mask IoU 0.65 against ~0.25 for unrelated poses); colours only partly (the outfit's
hue right in 31% of renders against 12% by chance: blue is learned, green and the warm hues
weakly); the style LoRA pulls the background 17% of the way to the sunset. Building it took
about 75 minutes on 2 threads (two rounds and the LoRA alone again: --reuse). To try next: train the IP-Adapter alone
much longer with the UNet frozen, and a LoRA on the conv layers too.
"""

from __future__ import annotations

import argparse
import colorsys
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

SIZE = 64
VIEWS = ("front", "three-quarter", "side", "back")
HELD_OUT_POSES = ("victory", "pointing", "uppercut", "walking", "sword ready")
PROMPTS = (
    "",
    "blurry, lowres",
    "blurry, lowres, deformed",
    "ariaknight, red-haired knight in blue armour, full body",
    "kaelrogue, dark-haired rogue in a green cloak, full body",
    "two fighters in a stone courtyard, dynamic action",
    "throwing a punch",
    "hit, recoiling",
    "a character, front view, full body, standing, character turnaround, plain background",
    "a character, back view, full body, standing, character turnaround, plain background",
)


def log(message: str) -> None:
    print(f"[toy-world {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- data ----------------------------------------------------------------------------------


class PoseSource:
    """Training (or held-out) people from the pose presets, augmented: mirrored, limbs turned,
    placed at random sizes and positions on the canvas."""

    LIMB_JOINTS = (
        "right_shoulder",
        "right_elbow",
        "left_shoulder",
        "left_elbow",
        "right_hip",
        "right_knee",
        "left_hip",
        "left_knee",
        "neck",
    )

    def __init__(self, held_out: bool):
        from core.pose.presets import PresetLibrary

        presets = PresetLibrary()
        self.skeletons = []
        for preset in presets.list():
            if (preset.name in HELD_OUT_POSES) != held_out:
                continue
            skeleton = presets.skeleton(preset.name)
            self.skeletons.append(skeleton)
            if len(skeleton.people) > 1:  # each fighter alone, too
                for person in skeleton.people:
                    self.skeletons.append(
                        type(skeleton)(people=(person,), canvas_width=skeleton.canvas_width, canvas_height=skeleton.canvas_height)
                    )

    def sample(
        self, rng: random.Random, size: tuple[int, int] = (SIZE, SIZE), augment: bool = True, scales: tuple[float, float] = (0.6, 0.95)
    ):
        skeleton = rng.choice(self.skeletons)
        if augment:
            if rng.random() < 0.5:
                skeleton = skeleton.mirrored()
            people = []
            for person in skeleton.people:
                for joint in self.LIMB_JOINTS:
                    if rng.random() < 0.4 and person.keypoint(joint).present:
                        person = person.rotated_limb(joint, rng.gauss(0, 12 if joint == "neck" else 25))
                people.append(person)
            skeleton = type(skeleton)(people=tuple(people), canvas_width=skeleton.canvas_width, canvas_height=skeleton.canvas_height)
        width, height = size
        scale = rng.uniform(*scales) if augment else 0.84
        box_w = box_h = min(width, height) * scale  # a square box: on a wide canvas, anywhere along it
        x = rng.uniform(0, width - box_w) if augment else (width - box_w) / 2
        y = rng.uniform(0, height - box_h) if augment else (height - box_h) / 2
        fitted = skeleton.fitted((x, y, box_w, box_h))
        return type(skeleton)(people=fitted.people, canvas_width=width, canvas_height=height)


def control_image(skeleton) -> np.ndarray:
    from core.pose.render import render_pose

    return np.asarray(render_pose(skeleton))


def make_characters(rng: random.Random, count: int):
    from core.demo.toy_world import random_character

    return [random_character(rng) for _ in range(count)]


def reference_pixels(characters, image_size: int) -> torch.Tensor:
    """(n, 4 views, 3, s, s): each character's four references as the IP-Adapter's encoder sees them."""
    from core.demo.toy_world import reference_image
    from core.engine.image_embeddings import preprocess

    batches = []
    for character in characters:
        batches.append(preprocess([reference_image(character, view) for view in VIEWS], image_size))
    return torch.stack(batches)


def colour_target(character) -> torch.Tensor:
    return torch.tensor([*character.skin, *character.hair, *character.outfit], dtype=torch.float32) / 127.5 - 1.0


def make_figures(
    rng: random.Random,
    poses: PoseSource,
    characters,
    count: int,
    tint_rate: float = 0.0,
    size: tuple[int, int] = (SIZE, SIZE),
    scales: tuple[float, float] = (0.6, 0.95),
):
    """`count` (control image, figure, character index, tinted) samples, as uint8 arrays."""
    from core.demo.toy_world import BACKGROUND, TINT, draw_people

    controls, figures, owners, tinted = [], [], [], []
    for _ in range(count):
        skeleton = poses.sample(rng, size, scales=scales)
        index = rng.randrange(len(characters))
        tint = rng.random() < tint_rate
        image = draw_people(size, [(p, characters[index]) for p in skeleton.people], size, TINT if tint else BACKGROUND)
        controls.append(control_image(skeleton))
        figures.append(np.asarray(image))
        owners.append(index)
        tinted.append(tint)
    return np.stack(controls), np.stack(figures), np.asarray(owners), np.asarray(tinted)


def figure_focus(figures: np.ndarray, factor: int = 4, gain: float = 4.0) -> torch.Tensor:
    """(n, 1, h/factor, w/factor) loss weights: 1 on the background, 1 + gain on the figure. The
    figure is a small share of each picture, and its colours are what the IP-Adapter must learn."""
    from core.demo.toy_world import BACKGROUND

    distance = np.abs(figures.astype(np.int16) - np.asarray(BACKGROUND, np.int16)).max(axis=-1)
    mask = torch.from_numpy((distance > 30).astype(np.float32)).unsqueeze(1)
    return 1.0 + gain * F.avg_pool2d(mask, factor)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (n, h, w, 3) -> float (n, 3, h, w) in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


# -- models --------------------------------------------------------------------------------


def toy_vae(scaling_factor: float = 1.0):
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=[16, 32, 32],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 3,
        up_block_types=["UpDecoderBlock2D"] * 3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=SIZE,
        scaling_factor=scaling_factor,
    )


def toy_unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=SIZE // 4,
        in_channels=4,
        out_channels=4,
        # cross-attention at both levels: the reference's colours reach the full-resolution
        # features the figure is painted from, not only the coarse ones
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    )


def toy_image_encoder():
    from transformers import CLIPVisionModelWithProjection

    from core.demo.tiny_models import tiny_image_encoder_config

    return CLIPVisionModelWithProjection(tiny_image_encoder_config())


def train_image_encoder(encoder, pixels: torch.Tensor, targets: torch.Tensor, steps: int, rng: torch.Generator) -> float:
    """The encoder's image_embeds learn to hold the reference's colours: the first nine numbers
    are skin, hair and outfit RGB in [-1, 1], the rest stay near zero."""
    optimiser = torch.optim.AdamW(encoder.parameters(), lr=2e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=2e-3, total_steps=steps, pct_start=0.1)
    n = pixels.shape[0]
    loss_value = float("nan")
    for _ in range(steps):
        index = torch.randint(0, n, (64,), generator=rng)
        view = torch.randint(0, len(VIEWS), (64,), generator=rng)
        embeds = encoder(pixels[index, view]).image_embeds
        loss = F.mse_loss(embeds[:, :9], targets[index]) + 0.1 * embeds[:, 9:].pow(2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        loss_value = loss.item()
    return loss_value


def train_vae(vae, images: torch.Tensor, steps: int, rng: torch.Generator) -> float:
    optimiser = torch.optim.AdamW(vae.parameters(), lr=2e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=2e-3, total_steps=steps, pct_start=0.05)
    loss_value = float("nan")
    for step in range(steps):
        batch = images[torch.randint(0, images.shape[0], (16,), generator=rng)]
        posterior = vae.encode(batch).latent_dist
        decoded = vae.decode(posterior.sample(generator=rng)).sample
        loss = F.l1_loss(decoded, batch) + F.mse_loss(decoded, batch) + 1e-6 * posterior.kl().mean()
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        loss_value = loss.item()
        if step % 200 == 0:
            log(f"  vae step {step}/{steps} loss {loss_value:.4f}")
    return loss_value


def ip_adapter_state(unet, image_embed_dim: int, seed: int) -> dict[str, dict[str, torch.Tensor]]:
    """A fresh base IP-Adapter for `unet`, split as diffusers' loader takes it. Its attention
    weights only give the shapes: init_ip_from_text_attention replaces them before training."""
    from core.demo.tiny_models import _ip_attention_weights

    cross = unet.config.cross_attention_dim
    generator = torch.Generator().manual_seed(seed)
    image_proj = {
        "proj.weight": torch.randn(cross * 4, image_embed_dim, generator=generator) * 0.1,
        "proj.bias": torch.zeros(cross * 4),
        "norm.weight": torch.ones(cross),
        "norm.bias": torch.zeros(cross),
    }
    layers = {key.removeprefix("ip_adapter."): value for key, value in _ip_attention_weights(unet, generator).items()}
    return {"image_proj": image_proj, "ip_adapter": layers}


def init_ip_from_text_attention(unet) -> None:
    """to_k_ip / to_v_ip start as copies of the layer's own to_k / to_v, as the original
    IP-Adapter training does: the image tokens are read like text tokens from the first step."""
    for name, processor in unet.attn_processors.items():
        if name.endswith("attn1.processor"):
            continue
        attention = unet.get_submodule(name.rsplit(".", 1)[0])
        with torch.no_grad():
            processor.to_k_ip[0].weight.copy_(attention.to_k.weight)
            processor.to_v_ip[0].weight.copy_(attention.to_v.weight)


def ip_processors(unet) -> list:
    return [p for name, p in unet.attn_processors.items() if not name.endswith("attn1.processor")]


def export_ip_adapter(unet) -> dict[str, torch.Tensor]:
    """The trained IP-Adapter in the tencent-ailab layout (image_proj.*, ip_adapter.<1,3,5..>.*)."""
    projection = unet.encoder_hid_proj.image_projection_layers[0]
    # diffusers' ImageProjection calls the linear map `image_embeds`; the original names it `proj`.
    tensors = {f"image_proj.{k.replace('image_embeds.', 'proj.')}": v for k, v in projection.state_dict().items()}
    key_id = 1
    for name, processor in unet.attn_processors.items():
        if name.endswith("attn1.processor"):
            continue
        tensors[f"ip_adapter.{key_id}.to_k_ip.weight"] = processor.to_k_ip[0].weight
        tensors[f"ip_adapter.{key_id}.to_v_ip.weight"] = processor.to_v_ip[0].weight
        key_id += 2
    return {k: v.detach().to(torch.float16).contiguous() for k, v in tensors.items()}


def plain_unet_state(unet) -> dict[str, torch.Tensor]:
    """The UNet's own weights, without the IP-Adapter parts attached for training."""
    return {k: v for k, v in unet.state_dict().items() if not k.startswith("encoder_hid_proj.") and ".processor." not in k}


class LoraLinear(torch.nn.Module):
    """kohya's LoRA on one Linear: out = W x + up(down(x)) * alpha / rank (alpha = rank)."""

    def __init__(self, base: torch.nn.Linear, rank: int, generator: torch.Generator):
        super().__init__()
        self.base = base
        self.down = torch.nn.Parameter(torch.randn(rank, base.in_features, generator=generator) / base.in_features**0.5)
        self.up = torch.nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x):
        return self.base(x) + F.linear(F.linear(x, self.down), self.up)


def lora_targets(unet) -> list[tuple[str, torch.nn.Linear]]:
    return [
        (name, module)
        for name, module in unet.named_modules()
        if isinstance(module, torch.nn.Linear)
        and ("transformer_blocks" in name or name.endswith(("proj_in", "proj_out")))
        and name.endswith(("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"))
    ]


def _set_module(root, dotted: str, module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


# -- the diffusion stage -------------------------------------------------------------------


class DiffusionTrainer:
    def __init__(self, unet, controlnet, scheduler, text_bank: torch.Tensor, seed: int):
        self.unet = unet
        self.controlnet = controlnet
        self.scheduler = scheduler
        self.text_bank = text_bank
        self.generator = torch.Generator().manual_seed(seed)
        alphas = scheduler.alphas_cumprod
        self.sqrt_a = alphas.sqrt()
        self.sqrt_1ma = (1 - alphas).sqrt()
        self.snr = alphas / (1 - alphas)

    def loss(self, latents, controls, embeds, ip_scale: float | None = None, high_noise: float = 0.5, focus=None):
        batch = latents.shape[0]
        g = self.generator
        total = self.scheduler.config.num_train_timesteps
        t = torch.randint(0, total, (batch,), generator=g)
        # part of each batch at high noise, where a figure's colours are decided: there the
        # conditioning (the IP-Adapter's reference, the LoRA) is all the model has to go on
        high = torch.rand(batch, generator=g) < high_noise
        t = torch.where(high, torch.randint(total // 2, total, (batch,), generator=g), t)
        noise = torch.randn(latents.shape, generator=g)
        noisy = self.sqrt_a[t].view(-1, 1, 1, 1) * latents + self.sqrt_1ma[t].view(-1, 1, 1, 1) * noise
        text = self.text_bank[torch.randint(0, self.text_bank.shape[0], (batch,), generator=g)]
        if ip_scale is not None:
            for processor in ip_processors(self.unet):
                processor.scale = [ip_scale]
        extra = {"added_cond_kwargs": {"image_embeds": [embeds.unsqueeze(1)]}} if embeds is not None else {}
        down, mid = self.controlnet(noisy, t, text, controlnet_cond=controls, return_dict=False)
        prediction = self.unet(noisy, t, text, down_block_additional_residuals=down, mid_block_additional_residual=mid, **extra).sample
        snr = self.snr[t]
        # min-SNR-5, times an x0-like emphasis on the noisiest steps (1/snr, at most 10): with
        # plain eps loss a wrong colour at high noise costs almost nothing
        weight = (snr.clamp(max=5.0) / snr * (1.0 / snr).clamp(1.0, 10.0)).view(-1, 1, 1, 1)
        if focus is not None:  # (batch, 1, h, w): the figure's pixels count more than the background's
            weight = weight * focus
        return (weight * (prediction - noise).pow(2)).mean()


def text_bank(text_encoder, tokenizer) -> torch.Tensor:
    tokens = tokenizer(list(PROMPTS), padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt")
    with torch.no_grad():
        return text_encoder(tokens.input_ids)[0]


# -- the build -----------------------------------------------------------------------------


def build(
    out: Path,
    quick: bool = False,
    seed: int = 0,
    reuse: Path | None = None,
    diffusion_steps: int | None = None,
    lora_steps: int | None = None,
    keep_ip: bool = False,
) -> dict:
    from diffusers import ControlNetModel, StableDiffusionPipeline
    from safetensors.torch import save_file
    from transformers import CLIPTextModel, CLIPTokenizer

    from core.demo import tiny_models

    started = time.time()
    timings: dict[str, float] = {}
    rng = random.Random(seed)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    steps = {
        "encoder": 150 if quick else 400,
        "vae": 200 if quick else 500,
        "diffusion": 150 if quick else 1300,
        "lora": 40 if quick else 400,
    }
    if diffusion_steps is not None:
        steps["diffusion"] = diffusion_steps
    if lora_steps is not None:
        steps["lora"] = lora_steps
    counts = {"characters": 96 if quick else 768, "figures": 256 if quick else 3072, "wide": 64 if quick else 768}
    # --reuse: the encoder and VAE from an earlier build (same seed and counts, so the same data),
    # and its UNet and ControlNet as the starting point of a shorter diffusion stage
    previous = torch.load(reuse / ".train-state.pt", weights_only=False) if reuse else None

    # 1. the image encoder: a reference's colours
    mark = time.time()
    characters = make_characters(rng, counts["characters"])
    encoder = toy_image_encoder()
    pixels = reference_pixels(characters, encoder.config.image_size)
    targets = torch.stack([colour_target(c) for c in characters])
    if previous:
        encoder.load_state_dict(previous["encoder"])
        loss = float("nan")
    else:
        loss = train_image_encoder(encoder, pixels, targets, steps["encoder"], generator)
    encoder.eval().requires_grad_(False)
    with torch.no_grad():
        n, v = pixels.shape[:2]
        embeds = encoder(pixels.flatten(0, 1)).image_embeds.view(n, v, -1).mean(dim=1)  # as the engine averages references
    timings["encoder"] = time.time() - mark
    log(f"image encoder: loss {loss:.4f} ({timings['encoder']:.0f} s)")

    # 2. the VAE
    mark = time.time()
    poses = PoseSource(held_out=False)
    controls, figures, owners, tinted = make_figures(rng, poses, characters, counts["figures"], tint_rate=0.15)
    images = to_tensor(figures)
    torch.manual_seed(seed + 1)
    vae = toy_vae()
    if previous:
        vae.load_state_dict(previous["vae"])
        loss = float("nan")
    else:
        loss = train_vae(vae, images, steps["vae"], generator)
    vae.eval().requires_grad_(False)
    with torch.no_grad():
        means = torch.cat([vae.encode(images[i : i + 256]).latent_dist.mean for i in range(0, len(images), 256)])
    scaling = float(1.0 / means.std())
    vae.register_to_config(scaling_factor=scaling)
    latents = means * scaling
    # wide canvases with large, partly cropped figures, as the demo's two-shot scene has them
    wide_controls, wide_figures, wide_owners, _ = make_figures(
        random.Random(seed + 6), poses, characters, counts["wide"], size=(2 * SIZE, SIZE), scales=(0.7, 1.15)
    )
    with torch.no_grad():
        wide_images = to_tensor(wide_figures)
        wide_latents = torch.cat([vae.encode(wide_images[i : i + 128]).latent_dist.mean for i in range(0, len(wide_images), 128)]) * scaling
    wide_control_tensor = torch.from_numpy(wide_controls).permute(0, 3, 1, 2).float() / 255.0
    timings["vae"] = time.time() - mark
    log(f"vae: loss {loss:.4f}, scaling factor {scaling:.3f} ({timings['vae']:.0f} s)")

    # 3. UNet + ControlNet + IP-Adapter
    mark = time.time()
    tokenizer_dir = out / ".tokenizer"
    tiny_models.write_tiny_tokenizer(tokenizer_dir)
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(tiny_models.tiny_text_config()).eval().requires_grad_(False)
    texts = text_bank(text_encoder, tokenizer)
    torch.manual_seed(seed + 3)
    unet = toy_unet()
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16, 32, 32))
    with torch.no_grad():  # small, not zero: the control image matters from the first step
        for module in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            module.weight.normal_(0, 0.01)
    unet._load_ip_adapter_weights([ip_adapter_state(unet, embeds.shape[1], seed + 4)])
    if previous:
        unet.load_state_dict(previous["unet"])
        controlnet.load_state_dict(previous["controlnet"])
    if not keep_ip:
        init_ip_from_text_attention(unet)
    scheduler = tiny_models.tiny_scheduler()
    trainer = DiffusionTrainer(unet, controlnet, scheduler, texts, seed + 5)
    ip_parameters = [p for n, p in unet.named_parameters() if "encoder_hid_proj" in n or "_ip." in n]
    ip_ids = {id(p) for p in ip_parameters}
    rest = [p for p in [*unet.parameters(), *controlnet.parameters()] if p.requires_grad and id(p) not in ip_ids]
    parameters = [*rest, *ip_parameters]
    # the IP-Adapter gets ten times the rate: otherwise the UNet learns the average figure first
    # and the reference path barely moves
    base_lr = 3e-4 if previous else 1e-3
    optimiser = torch.optim.AdamW(
        [{"params": rest, "lr": base_lr}, {"params": ip_parameters, "lr": base_lr * 10, "weight_decay": 0.0}], weight_decay=1e-4
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=[base_lr, base_lr * 10], total_steps=max(1, steps["diffusion"]), pct_start=0.05
    )
    ema = [p.detach().clone() for p in parameters]
    control_tensor = torch.from_numpy(controls).permute(0, 3, 1, 2).float() / 255.0
    focus, wide_focus = figure_focus(figures), figure_focus(wide_figures)
    plain = np.flatnonzero(~tinted)
    unet.train()
    controlnet.train()
    running = None
    for step in range(steps["diffusion"]):
        # now and then no reference at all (scale 0): a scene's regions outside every identity
        # mask see exactly that
        ip_scale = 0.0 if torch.rand(1, generator=generator).item() < 0.08 else 0.5 + 0.5 * torch.rand(1, generator=generator).item()
        if step % 4 == 0:  # every fourth batch: eight wide pictures
            index = torch.randint(0, len(wide_owners), (8,), generator=generator)
            batch_embeds = embeds[wide_owners[index.numpy()]].clone()
            batch_embeds[torch.rand(8, generator=generator) < 0.1] = 0.0
            loss = trainer.loss(wide_latents[index], wide_control_tensor[index], batch_embeds, ip_scale, focus=wide_focus[index])
        else:
            index = torch.from_numpy(plain[torch.randint(0, len(plain), (16,), generator=generator).numpy()])
            batch_embeds = embeds[owners[index.numpy()]].clone()
            batch_embeds[torch.rand(16, generator=generator) < 0.1] = 0.0  # the engine's negative: zeros
            loss = trainer.loss(latents[index], control_tensor[index], batch_embeds, ip_scale, focus=focus[index])
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimiser.step()
        schedule.step()
        decay = min(0.995, (1 + step) / (10 + step))
        with torch.no_grad():
            for average, parameter in zip(ema, parameters):
                average.lerp_(parameter, 1 - decay)
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 25 == 0 or step == steps["diffusion"] - 1:
            log(f"  diffusion step {step}/{steps['diffusion']} loss {running:.4f} ({time.time() - mark:.0f} s)")
    with torch.no_grad():
        for average, parameter in zip(ema, parameters):
            parameter.copy_(average)
    unet.eval()
    controlnet.eval()
    timings["diffusion"] = time.time() - mark
    log(f"diffusion: loss {running if running is not None else float('nan'):.4f} ({timings['diffusion']:.0f} s)")

    # 4. the LoRA: a warm background
    mark = time.time()
    lora_tensors = train_lora(unet, trainer, latents, control_tensor, embeds, owners, tinted, steps["lora"], generator)
    timings["lora"] = time.time() - mark
    log(f"lora: ({timings['lora']:.0f} s)")

    torch.save(
        {
            "unet": unet.state_dict(),
            "controlnet": controlnet.state_dict(),
            "vae": vae.state_dict(),
            "encoder": encoder.state_dict(),
            "lora": lora_tensors,
        },
        out / ".train-state.pt",
    )
    # 5. save, in the formats users' files have (fp16 weights)
    plain_unet = toy_unet()
    plain_unet.load_state_dict(plain_unet_state(unet))
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=plain_unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.to(torch.float16)
    paths = {
        "checkpoint": out / "toy-sd15",
        "ip_adapter": out / "ip-adapter" / "models" / "ip-adapter_toy_sd15.safetensors",
        "image_encoder": out / "ip-adapter" / "models" / "image_encoder",
        "controlnet": out / "control_toy_sd15_openpose",
        "lora": out / "loras" / "toy-warm-background-sd15.safetensors",
    }
    pipe.save_pretrained(paths["checkpoint"], safe_serialization=True)
    paths["ip_adapter"].parent.mkdir(parents=True, exist_ok=True)
    save_file(export_ip_adapter(unet), str(paths["ip_adapter"]))
    encoder.to(torch.float16).save_pretrained(paths["image_encoder"], safe_serialization=True)
    controlnet.to(torch.float16).save_pretrained(paths["controlnet"], safe_serialization=True)
    paths["lora"].parent.mkdir(parents=True, exist_ok=True)
    save_file(
        lora_tensors,
        str(paths["lora"]),
        metadata={"ss_network_module": "networks.lora", "ss_network_dim": "4", "ss_network_alpha": "4", "ss_base_model_version": "sd_v1"},
    )
    import shutil

    shutil.rmtree(tokenizer_dir, ignore_errors=True)
    size = sum(f.stat().st_size for f in out.rglob("*.safetensors"))
    report = {
        "seconds": round(time.time() - started, 1),
        "stages": {k: round(v, 1) for k, v in timings.items()},
        "weights_bytes": size,
        "paths": {k: v.relative_to(out).as_posix() for k, v in paths.items()},
        "quick": quick,
        "seed": seed,
    }
    (out / "toy-world.json").write_text(json.dumps(report, indent=2))
    log(f"done in {report['seconds']} s, weights {size / 1e6:.2f} MB")
    return report


def train_lora(unet, trainer, latents, control_tensor, embeds, owners, tinted, steps: int, generator) -> dict[str, torch.Tensor]:
    """A rank-4 LoRA on every attention projection that turns the background warm; kohya keys."""
    rank = 4
    targets = lora_targets(unet)
    frozen = [p for p in [*unet.parameters(), *trainer.controlnet.parameters()]]
    for p in frozen:
        p.requires_grad_(False)
    wrapped = {}
    for name, module in targets:
        wrapped[name] = LoraLinear(module, rank, generator)
        _set_module(unet, name, wrapped[name])
    parameters = [p for w in wrapped.values() for p in (w.down, w.up)]
    optimiser = torch.optim.AdamW(parameters, lr=1e-2, weight_decay=0.0)
    # the background is decided in the noisiest steps: train mostly there
    warm = np.flatnonzero(tinted)
    for step in range(steps):
        index = torch.from_numpy(warm[torch.randint(0, len(warm), (16,), generator=generator).numpy()])
        loss = trainer.loss(latents[index], control_tensor[index], embeds[owners[index.numpy()]], 0.7, high_noise=0.8)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 100 == 0:
            log(f"  lora step {step}/{steps} loss {loss.item():.4f}")
    tensors = {}
    for name, module in wrapped.items():
        key = "lora_unet_" + name.replace(".", "_")
        tensors[f"{key}.lora_down.weight"] = module.down.detach().to(torch.float16).contiguous()
        tensors[f"{key}.lora_up.weight"] = module.up.detach().to(torch.float16).contiguous()
        tensors[f"{key}.alpha"] = torch.tensor(float(rank), dtype=torch.float16)
        _set_module(unet, name, module.base)
    return tensors


def load_pipeline(out: Path):
    """The built set as one diffusers ControlNet pipeline with the IP-Adapter and the LoRA loaded
    (the LoRA off until asked for)."""
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

    controlnet = ControlNetModel.from_pretrained(out / "control_toy_sd15_openpose", torch_dtype=torch.float32)
    pipe = StableDiffusionControlNetPipeline.from_pretrained(
        out / "toy-sd15", controlnet=controlnet, torch_dtype=torch.float32, safety_checker=None, requires_safety_checker=False
    )
    pipe.load_ip_adapter(
        str(out / "ip-adapter"), subfolder="models", weight_name="ip-adapter_toy_sd15.safetensors", image_encoder_folder=None
    )
    pipe.load_lora_weights(str(out / "loras"), weight_name="toy-warm-background-sd15.safetensors", adapter_name="style")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def evaluate(out: Path, count: int = 16, seed: int = 7, steps: int = 20, cfg: float = 5.0, ip_scale: float = 0.8) -> dict:
    """Measures the built set on held-out poses and unseen characters, through diffusers itself:
    pose IoU (figure masks of the render and of the drawn truth; unrelated poses give ~0.25),
    outfit hue accuracy (the render's colour inside the truth's outfit is nearest to the
    character's own hue among the palette's), and the LoRA's pull of the background to TINT."""
    from transformers import CLIPVisionModelWithProjection

    from core.demo.toy_world import BACKGROUND, OUTFIT_HUES, TINT, draw_people, figure_mask, iou, mean_colour

    pipe = load_pipeline(out)
    encoder = CLIPVisionModelWithProjection.from_pretrained(out / "ip-adapter" / "models" / "image_encoder", torch_dtype=torch.float32)
    rng = random.Random(seed)
    poses = PoseSource(held_out=True)
    ious, hue_hits, colour_errors, tint_pull = [], [], [], []
    for index in range(count):
        character = make_characters(rng, 1)[0]
        skeleton = poses.sample(rng)
        truth = draw_people((SIZE, SIZE), [(p, character) for p in skeleton.people], (SIZE, SIZE))
        with torch.no_grad():
            embeds = encoder(reference_pixels([character], encoder.config.image_size)[0]).image_embeds.mean(0, keepdim=True)
        image_embeds = [torch.stack([torch.zeros_like(embeds), embeds])]
        control = Image.fromarray(control_image(skeleton))
        renders = {}
        for style in (False, True):
            if style:
                pipe.enable_lora()
                pipe.set_adapters(["style"], [1.0])
            else:
                pipe.disable_lora()
            pipe.set_ip_adapter_scale(ip_scale)
            renders[style] = pipe(
                "",
                image=control,
                ip_adapter_image_embeds=image_embeds,
                num_inference_steps=steps,
                guidance_scale=cfg,
                height=SIZE,
                width=SIZE,
                generator=torch.Generator().manual_seed(index),
            ).images[0]
        render = renders[False]
        truth_mask = figure_mask(truth)
        ious.append(iou(figure_mask(render), truth_mask))
        outfit_mask = np.all(np.asarray(truth) == np.asarray(character.outfit, np.uint8), axis=-1)
        got = mean_colour(render, outfit_mask)
        colour_errors.append(float(np.linalg.norm(got - np.asarray(character.outfit, np.float32))))
        hue = colorsys.rgb_to_hsv(*(np.clip(got, 0, 255) / 255.0))[0]
        own = colorsys.rgb_to_hsv(*(np.asarray(character.outfit) / 255.0))[0]

        def nearest(h: float) -> int:
            return min(range(len(OUTFIT_HUES)), key=lambda i: min(abs(h - OUTFIT_HUES[i]), 1 - abs(h - OUTFIT_HUES[i])))

        hue_hits.append(nearest(hue) == nearest(own))
        background = ~figure_mask(truth, threshold=20.0)
        plain, styled = mean_colour(render, background), mean_colour(renders[True], background)
        tint, base = np.asarray(TINT, np.float32), np.asarray(BACKGROUND, np.float32)
        # 0: the background did not move toward TINT; 1: it reached it
        tint_pull.append(float(np.dot(styled - plain, tint - base) / np.dot(tint - base, tint - base)))
        if index < 8:
            sheet = Image.new("RGB", (SIZE * 4, SIZE))
            for column, image in enumerate((control, truth, render, renders[True])):
                sheet.paste(image.convert("RGB"), (column * SIZE, 0))
            sheet.save(out / f".eval-{index}.png")
    report = {
        "pose_iou": round(float(np.mean(ious)), 3),
        "outfit_hue_accuracy": round(float(np.mean(hue_hits)), 3),
        "outfit_colour_error": round(float(np.mean(colour_errors)), 1),
        "lora_background_pull": round(float(np.mean(tint_pull)), 3),
        "renders": count,
    }
    log(f"evaluation: {report}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the model set")
    parser.add_argument("--quick", action="store_true", help="a few steps per stage: checks the plumbing, not the pictures")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--reuse", type=Path, help="an earlier build: reuse its encoder and VAE, start from its UNet and ControlNet")
    parser.add_argument("--diffusion-steps", type=int, help="override the diffusion stage's step count")
    parser.add_argument("--lora-steps", type=int, help="override the LoRA stage's step count")
    parser.add_argument("--keep-ip", action="store_true", help="with --reuse: go on training its IP-Adapter (a second round)")
    parser.add_argument("--evaluate", action="store_true", help="only measure an existing build in OUT_DIR")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.evaluate:
        print(json.dumps(evaluate(args.out), indent=2))
        return 0
    report = build(args.out, args.quick, args.seed, args.reuse, args.diffusion_steps, args.lora_steps, args.keep_ip)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
