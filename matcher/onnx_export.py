"""Exporting a sentence-transformers model to ONNX (and quantizing it to int8), once, into a cache directory.

The export is made under a file lock, so that processes starting together make it once; each file is written under
a temporary name and renamed, its metadata last (an ONNX file without current metadata beside it is never used).
torch is imported only to export.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import secrets
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from matcher.embedding import resolve_model
from matcher.errors import ConfigError

PRECISIONS = ("onnx", "onnx-int8")
POOLING_MODES = ("mean", "cls", "max")
# Bump when the export or the quantization changes, so that caches made by an older version are made again.
EXPORT_FORMAT = 1
OPSET = 17
# Dynamic int8 quantization, kept for being the closest to the PyTorch vectors of the variants measured (per-tensor
# scales lose most; the word-embedding table stays fp32 as the Gather saves no time). Symmetric weights: on a CPU
# without VNNI (AVX2 only), asymmetric ones saturated onnxruntime's int8 product, which put MiniLM's query vectors at
# a mean cosine of 0.93 to fp32's (lowest 0.16); symmetric ones give 0.991 (0.981) at the same speed, and unsigned
# ones 0.993 (0.981), 10% slower (interleaved on 300 queries; bench/encoders.py prints the cosines).
INT8_OPTIONS: dict = {
    "weight_type": "QInt8",
    "per_channel": True,
    "op_types_to_quantize": ["MatMul"],
}
# sentence-transformers pipelines that the encoder reproduces; anything else (a Dense layer...) would be dropped.
_MODULES = ("Transformer", "Pooling", "Normalize")
_LEGACY_MODES = {"cls_token": "cls", "max_tokens": "max", "mean_tokens": "mean"}


@dataclass(frozen=True)
class ModelSpec:
    """What the export and the encoding read from a sentence-transformers directory."""

    source: str
    files: dict[str, list[int]]  # weights and config: [size, mtime_ns], so that a changed model is exported again
    pooling: str
    max_seq_length: int
    do_lower_case: bool
    dimension: int


def slug(model: str) -> str:
    """A directory name for ``model``: readable, and distinct for names that read alike once cleaned."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-.")[-80:] or "model"
    return f"{cleaned}-{hashlib.sha256(model.encode()).hexdigest()[:8]}"


def read_spec(model: str) -> ModelSpec:
    """The pooling, sequence length and dimension of a sentence-transformers directory, checked."""
    location = Path(resolve_model(model))
    if not (location / "tokenizer.json").is_file() or not (location / "config.json").is_file():
        raise ConfigError(
            f"The ONNX encoder needs a local sentence-transformers directory with config.json and tokenizer.json; "
            f"{model!r} resolves to {str(location)!r}. Set RELAIS_MODEL to such a directory."
        )
    modules = read_json(location / "modules.json", [])
    unsupported = [m["type"] for m in modules if m["type"].rsplit(".", 1)[-1] not in _MODULES]
    if unsupported:
        raise ConfigError(f"The ONNX encoder cannot run {model!r}: its modules {unsupported} are not supported.")
    pooling_dir = next((m["path"] for m in modules if m["type"].endswith(".Pooling")), "1_Pooling")
    pooling = _pooling_mode(read_json(location / pooling_dir / "config.json", {}), model)
    config = read_json(location / "config.json", {})
    st_config = read_json(location / "sentence_bert_config.json", {})
    tokenizer_config = read_json(location / "tokenizer_config.json", {})
    limit = min(int(tokenizer_config.get("model_max_length", 512)), int(config.get("max_position_embeddings", 512)))
    files = {
        p.name: [p.stat().st_size, p.stat().st_mtime_ns]
        for p in sorted(location.iterdir())
        if p.suffix in {".safetensors", ".bin"} or p.name == "config.json"
    }
    return ModelSpec(
        source=str(location.resolve()),
        files=files,
        pooling=pooling,
        max_seq_length=int(st_config.get("max_seq_length") or limit),
        do_lower_case=bool(st_config.get("do_lower_case", False)),
        dimension=int(config["hidden_size"]),
    )


def ensure_export(spec: ModelSpec, precision: str, directory: Path, int8_options: dict | None = None) -> Path:
    """The ONNX file for ``spec`` at ``precision`` in ``directory``, exported first unless a current one is there;
    int8 is quantized with ``int8_options`` (default ``INT8_OPTIONS``)."""
    options = INT8_OPTIONS if int8_options is None else int8_options
    if _is_current(spec, precision, directory, options):
        return _paths(directory, precision)[0]
    directory.mkdir(parents=True, exist_ok=True)
    with exclusive(directory / ".lock"):
        # int8 is quantized from the fp32 export; either may have been made by another process while this one waited
        for needed in dict.fromkeys(["onnx", precision]):
            if not _is_current(spec, needed, directory, options):
                _make(spec, needed, directory, options)
    return _paths(directory, precision)[0]


def _make(spec: ModelSpec, precision: str, directory: Path, options: dict) -> None:
    import onnxruntime

    path, meta_path = _paths(directory, precision)
    if precision == "onnx":
        import torch

        with replacing(path) as tmp:
            _export(spec, tmp)
        torch_version = torch.__version__
    else:
        with replacing(path) as tmp:
            _quantize(_paths(directory, "onnx")[0], tmp, options)
        torch_version = read_json(_paths(directory, "onnx")[1], {}).get("versions", {}).get("torch")
    versions = {"onnxruntime": onnxruntime.__version__, "torch": torch_version}
    meta = {**_expected(spec, precision, options), "versions": versions}
    # The metadata is written last: an ONNX file without current metadata beside it is never used.
    with replacing(meta_path) as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def _paths(directory: Path, precision: str) -> tuple[Path, Path]:
    stem = "model" if precision == "onnx" else "model-int8"
    return directory / f"{stem}.onnx", directory / f"{stem}.json"


def _expected(spec: ModelSpec, precision: str, options: dict) -> dict:
    expected = {"format": EXPORT_FORMAT, "precision": precision, **asdict(spec)}
    if precision == "onnx-int8":
        expected["quantization"] = options
    return json.loads(json.dumps(expected))  # as it reads back from the file: tuples become lists


def _is_current(spec: ModelSpec, precision: str, directory: Path, options: dict) -> bool:
    path, meta_path = _paths(directory, precision)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return False
    meta.pop("versions", None)
    return path.is_file() and meta == _expected(spec, precision, options)


def _export(spec: ModelSpec, target: Path) -> None:
    """Trace the transformer (without pooling) to ONNX with dynamic batch and sequence axes, and check it."""
    import inspect

    import torch
    from transformers import AutoModel

    # Eager attention traces to plain MatMul/Softmax; SDPA's tracing path turns shape tests into constants.
    transformer = AutoModel.from_pretrained(spec.source, attn_implementation="eager")
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in inspect.signature(transformer.forward).parameters:
        names.append("token_type_ids")

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.transformer(**dict(zip(names, inputs, strict=True))).last_hidden_state

    # eval() on the wrapper: the exporter restores the training flag of the module it is given, dropout included.
    module = TokenEmbeddings().eval()
    axes = {name: {0: "batch", 1: "sequence"} for name in [*names, "token_embeddings"]}
    with warnings.catch_warnings(), torch.no_grad():
        # The legacy exporter's deprecation and its tracer's notes on shape tests: the check below tests the result.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            _sample_inputs(2, 8, len(names)),  # one row padded, so that the graph keeps the mask's path
            str(target),
            dynamo=False,
            input_names=names,
            output_names=["token_embeddings"],
            dynamic_axes=axes,
            opset_version=OPSET,
        )
        # Another shape than the traced one: a constant folded from the sample would show here.
        sample = _sample_inputs(3, 13, len(names))
        expected = module(*sample).numpy()
    import onnxruntime

    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    actual = session.run(None, {n: t.numpy() for n, t in zip(names, sample, strict=True)})[0]
    valid = sample[1].numpy().astype(bool)
    error = float(np.abs(actual - expected)[valid].max())
    if error > 1e-3:
        raise ConfigError(f"The ONNX export of {spec.source} does not reproduce PyTorch (max error {error:.3g}).")


def _sample_inputs(batch: int, length: int, count: int) -> tuple:
    import torch

    mask = torch.ones(batch, length, dtype=torch.int64)
    mask[-1, length // 2 :] = 0
    ids = (torch.arange(batch * length).reshape(batch, length) * 37 % 20000 + 1000) * mask
    return (ids, mask, torch.zeros_like(mask))[:count]


def _quantize(source: Path, target: Path, options: dict) -> None:
    """Dynamic int8 quantization: int8 weights, activations quantized at run time."""
    import copy
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    def not_the_advice(record: logging.LogRecord) -> bool:
        # Its advice to pre-process first, on the root logger: measured, it changes nothing for these models.
        return not record.getMessage().startswith("Please consider to run pre-processing")

    logging.getLogger().addFilter(not_the_advice)
    try:  # a copy: quantize_dynamic adds its defaults to the options it is given, which would change the metadata
        options = copy.deepcopy(options)
        quantize_dynamic(source, target, weight_type=QuantType[options.pop("weight_type")], **options)
    finally:
        logging.getLogger().removeFilter(not_the_advice)


def _pooling_mode(config: dict, model: str) -> str:
    mode = config.get("pooling_mode")
    if mode is None:  # the older format: one boolean per mode, sentence-transformers' order; none means mean
        modes = [
            key.removeprefix("pooling_mode_") for key, on in config.items() if key.startswith("pooling_mode_") and on
        ]
        mode = [_LEGACY_MODES.get(m, m) for m in modes] or "mean"
    if isinstance(mode, list) and len(mode) == 1:
        mode = mode[0]
    if mode not in POOLING_MODES:
        raise ConfigError(
            f"The ONNX encoder cannot pool like {model!r} ({mode!r}); it supports {', '.join(POOLING_MODES)}. "
            "Use the PyTorch encoder for this model."
        )
    return mode


def read_json(path: Path, default: object) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except ValueError as e:
        raise ConfigError(f"{path} is not valid JSON: {e}.") from e


@contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """An exclusive lock between processes (and between threads: each call opens the file anew)."""
    with open(lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces it atomically if the block succeeds."""
    # Named, not created: whoever writes it creates it with the usual permissions (mkstemp's are owner-only).
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
