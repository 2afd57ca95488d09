"""Regional prompts proven by what they do to a real cross-attention layer.

One diffusers `Attention` layer over an 8x8 latent, two regions (A: the left half, B: the right
half), a classifier-free-guidance batch (negative prompt first, as diffusers orders it). A change
of region B's prompt must leave every position of region A untouched, and the negative half
untouched everywhere; region A's own prompt must be what A's positions see. The same holds with
IP-Adapter processors, whose weights must stay in the UNet's module tree while wrapped.
"""

from __future__ import annotations

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0, IPAdapterAttnProcessor2_0

from core.engine.regions import RegionalCrossAttention, RegionTensors, regional_prompts

DIM, CROSS, TOKENS, SIDE = 16, 12, 7, 8
LEFT = torch.zeros(SIDE, SIDE)
LEFT[:, : SIDE // 2] = 1.0
RIGHT = 1.0 - LEFT
LEFT_POSITIONS = LEFT.reshape(-1).bool()
RIGHT_POSITIONS = RIGHT.reshape(-1).bool()


def text(seed: int, batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, TOKENS, CROSS, generator=torch.Generator().manual_seed(seed))


def layer(processor=None) -> Attention:
    torch.manual_seed(0)
    attn = Attention(query_dim=DIM, cross_attention_dim=CROSS, heads=2, dim_head=8)
    attn.set_processor(processor or AttnProcessor2_0())
    return attn.eval()


def ip_processor() -> IPAdapterAttnProcessor2_0:
    torch.manual_seed(1)
    processor = IPAdapterAttnProcessor2_0(hidden_size=DIM, cross_attention_dim=CROSS, num_tokens=(4,), scale=1.0)
    for parameter in processor.parameters():
        torch.nn.init.normal_(parameter)
    return processor


@pytest.fixture
def batch():
    hidden = torch.randn(2, SIDE * SIDE, DIM, generator=torch.Generator().manual_seed(2))
    negative_and_scene = torch.cat([text(10), text(11)])  # [negative, scene prompt]
    return hidden, negative_and_scene


def run(attn: Attention, hidden, prompts, region_a: torch.Tensor, region_b: torch.Tensor, image_tokens=None):
    regions = [RegionTensors(region_a, LEFT), RegionTensors(region_b, RIGHT)]
    wrapper = RegionalCrossAttention(attn.processor, regions, (SIDE, SIDE), guided=True)
    states = (prompts, [image_tokens]) if image_tokens is not None else prompts
    with torch.no_grad():
        return wrapper(attn, hidden, states)


@pytest.mark.parametrize("with_ip_adapter", [False, True], ids=["plain", "ip-adapter"])
def test_region_b_s_prompt_never_reaches_region_a_nor_the_negative_half(batch, with_ip_adapter):
    hidden, prompts = batch
    attn = layer(ip_processor() if with_ip_adapter else None)
    image_tokens = torch.randn(2, 1, 4, CROSS, generator=torch.Generator().manual_seed(3)) if with_ip_adapter else None
    first = run(attn, hidden, prompts, text(20), text(30), image_tokens)
    second = run(attn, hidden, prompts, text(20), text(31), image_tokens)

    negative, conditional = 0, 1
    assert torch.equal(first[negative], second[negative])  # the negative half never sees a region prompt
    assert torch.equal(first[conditional][LEFT_POSITIONS], second[conditional][LEFT_POSITIONS])
    change = (first[conditional][RIGHT_POSITIONS] - second[conditional][RIGHT_POSITIONS]).abs().mean()
    assert change > 1e-3  # not a no-op: B's prompt steers B's pixels


@pytest.mark.parametrize("with_ip_adapter", [False, True], ids=["plain", "ip-adapter"])
def test_each_region_sees_its_own_prompt_in_the_conditional_half(batch, with_ip_adapter):
    """What region A's pixels get is exactly the layer's answer to A's prompt (with the same
    image tokens); the negative half is the layer's answer to the negative prompt. Swapped CFG
    halves or swapped masks fail here."""
    hidden, prompts = batch
    attn = layer(ip_processor() if with_ip_adapter else None)
    image_tokens = torch.randn(2, 1, 4, CROSS, generator=torch.Generator().manual_seed(3)) if with_ip_adapter else None
    region_a, region_b = text(20), text(30)
    out = run(attn, hidden, prompts, region_a, region_b, image_tokens)

    def alone(prompt_pair: torch.Tensor) -> torch.Tensor:
        states = (prompt_pair, [image_tokens]) if image_tokens is not None else prompt_pair
        with torch.no_grad():
            return attn.processor(attn, hidden, states)

    as_a = alone(torch.cat([prompts[:1], region_a]))
    as_b = alone(torch.cat([prompts[:1], region_b]))
    torch.testing.assert_close(out[1][LEFT_POSITIONS], as_a[1][LEFT_POSITIONS])
    torch.testing.assert_close(out[1][RIGHT_POSITIONS], as_b[1][RIGHT_POSITIONS])
    torch.testing.assert_close(out[0], alone(prompts)[0])


def test_a_position_no_region_covers_keeps_the_scene_prompt(batch):
    hidden, prompts = batch
    attn = layer()
    top_left = torch.zeros(SIDE, SIDE)
    top_left[: SIDE // 2, : SIDE // 2] = 1.0
    wrapper = RegionalCrossAttention(attn.processor, [RegionTensors(text(20), top_left)], (SIDE, SIDE), guided=True)
    with torch.no_grad():
        out = wrapper(attn, hidden, prompts)
        scene = attn.processor(attn, hidden, prompts)
    uncovered = (1 - top_left).reshape(-1).bool()
    torch.testing.assert_close(out[1][uncovered], scene[1][uncovered])


def test_ip_adapter_weights_stay_in_the_module_tree_while_wrapped():
    """CPU offload moves the UNet's module tree; the IP-Adapter's to_k_ip/to_v_ip must be in it
    during a regional generation, or they are left on the wrong device."""

    class OneLayerUNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attn2 = layer(ip_processor())

        @property
        def attn_processors(self):
            return {"attn2.processor": self.attn2.processor}

        def set_attn_processor(self, processors):
            self.attn2.set_processor(processors["attn2.processor"])

    unet = OneLayerUNet()
    ip_weights = {name for name, _ in unet.named_parameters() if "to_k_ip" in name or "to_v_ip" in name}
    assert ip_weights
    with regional_prompts(unet, [RegionTensors(text(20), LEFT)], (SIDE, SIDE), guided=True):
        inside = {name for name, _ in unet.named_parameters() if "to_k_ip" in name or "to_v_ip" in name}
        assert len(inside) == len(ip_weights)
        unet.to(torch.float64)  # what an offload hook's .to(device) does to the whole tree
        assert all(p.dtype == torch.float64 for name, p in unet.named_parameters() if "_ip" in name)
    assert {name for name, _ in unet.named_parameters() if "to_k_ip" in name or "to_v_ip" in name} == ip_weights
    assert isinstance(unet.attn2.processor, IPAdapterAttnProcessor2_0)
