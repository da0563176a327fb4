"""The ComfyUI API-format Flux graph that both the `comfyui` and the `runpod` backends run."""

from __future__ import annotations

import math
from typing import Any

from images.backends.base import GenerationRequest

# Flux is trained around one megapixel; sampling a 24 MP print file directly would take a GPU far
# beyond its memory. The graph samples at about this many pixels (same aspect) and scales up.
SAMPLE_PIXELS = 1024 * 1024
SAVE_PREFIX = "pod_gateway"


def sample_size(width: int, height: int) -> tuple[int, int]:
    """The sampling size: the print aspect ratio at about SAMPLE_PIXELS, multiples of 16."""
    scale = min(1.0, math.sqrt(SAMPLE_PIXELS / (width * height)))
    return max(16, round(width * scale / 16) * 16), max(16, round(height * scale / 16) * 16)


def flux_graph(request: GenerationRequest, *, checkpoint: str) -> dict[str, Any]:
    """A text-to-image Flux graph (single checkpoint file) that saves one image at the print size."""
    sample_w, sample_h = sample_size(request.width, request.height)
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": request.full_prompt, "clip": ["1", 1]}},
        "3": {"class_type": "FluxGuidance", "inputs": {"guidance": request.guidance, "conditioning": ["2", 0]}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": request.negative_prompt, "clip": ["1", 1]}},
        "5": {
            "class_type": "EmptySD3LatentImage",
            "inputs": {"width": sample_w, "height": sample_h, "batch_size": 1},
        },
        "6": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["1", 0],
                "positive": ["3", 0],
                "negative": ["4", 0],
                "latent_image": ["5", 0],
                "seed": request.seed,
                "steps": request.steps,
                # Flux-dev is guidance-distilled: guidance goes through FluxGuidance, CFG stays 1.
                "cfg": 1.0,
                "sampler_name": "euler",
                "scheduler": "simple",
                "denoise": 1.0,
            },
        },
        "7": {"class_type": "VAEDecode", "inputs": {"samples": ["6", 0], "vae": ["1", 2]}},
        "8": {
            "class_type": "ImageScale",
            "inputs": {
                "image": ["7", 0],
                "upscale_method": "lanczos",
                "width": request.width,
                "height": request.height,
                "crop": "disabled",
            },
        },
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": SAVE_PREFIX}},
    }
