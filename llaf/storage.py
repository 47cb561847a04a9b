"""How a model's weight matrices are stored in the engine (src/matrix.fut).

A *format* stores one matrix; a *storage* picks the format of a Llama
model's per-layer projections and the one of its embedding and head:

    storage   layers   embedding/head   from
    f32       f32      f32              transformers models, F32/BF16 GGUF
    f16       f16      f16              F16 GGUF
    q8        q8       q8               Q8_0, Q5_0, Q5_1 GGUF (also mixed with Q4_0/Q4_1)
    q4        q4       q8               Q4_0/Q4_1 GGUF (SmolLM2's embedding is Q8_0)
    mixed     each matrix in the smallest format holding its type exactly
              among those decoded fastest (`kept`): K-quant files (Q4_K as
              q4k, the other K-quants as k8, Q8_0 and Q5_x as q8, Q4_x as
              q4), and any other mix of types (`Mixed`); asked for as
              `COMPACT` ("compact"), among all formats: Q5_K as q5k, Q6_K
              and Q3_K as q6k, Q5_x as q5, less memory and slower steps

Every format holds exactly the values the file means: a GGUF block is
re-laid-out, never re-quantized.  A matrix `name` in a non-f32 format is
several arrays in `Weights.arrays`: ``name`` itself for f16 (IEEE half bits
as uint16), ``name.q``, ``name.scale``, ``name.offset`` for q8 and q4
(codes, one scale and one offset per block of 32 values, both IEEE half
bits as uint16, as in the file's blocks), ``name.q``, ``.d``, ``.dmin``,
``.sc``, ``.mn`` for k8 and q4k, and the planes of high bits ``name.h``
besides for q5, q5k and q6k (see `FORMATS`); in the mixed storage,
``name.which`` (each matrix's format) and each format's stack under
``name.<format>`` (see `Mixed`).  These arrays
keep the file's row order; `Format.panels` lays them out for the engine
(src/matrix.fut: panels of `PANEL` rows, each column of a panel contiguous)
when they are handed to it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from .errors import LlafError

BLOCK = 32
PANEL = 32  # rows per panel: `P` in src/matrix.fut


@dataclass(frozen=True)
class Part:
    """One array of a block format: its name suffix, element type and
    trailing shape per block of 32 values (`()`: one value a block)."""

    suffix: str
    dtype: type
    per_block: tuple[int, ...] = ()


@dataclass(frozen=True)
class Format:
    """One matrix format: f32 or f16 values (`blocks` empty), or blocks of 32
    values stored as the arrays `blocks` (codes first)."""

    name: str
    dtype: type = np.float32
    blocks: tuple[Part, ...] = ()
    fast: bool = True  # decoded as fast as the byte codes (see `kept`)

    @property
    def blocked(self) -> bool:
        return bool(self.blocks)

    @property
    def bytes_per_value(self) -> float:
        if not self.blocked:
            return float(np.dtype(self.dtype).itemsize)
        return sum(np.dtype(p.dtype).itemsize * int(np.prod(p.per_block)) for p in self.blocks) / BLOCK

    def parts(self, name: str) -> list[str]:
        return [f"{name}.{p.suffix}" for p in self.blocks] if self.blocked else [name]

    def shapes(self, name: str, shape: tuple[int, ...]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """The arrays storing a matrix of `shape` (its last axis the columns)."""
        if not self.blocked:
            return {name: (shape, np.dtype(self.dtype))}
        blocks = (*shape[:-1], shape[-1] // BLOCK)
        return {f"{name}.{p.suffix}": ((*blocks, *p.per_block), np.dtype(p.dtype)) for p in self.blocks}

    def panels(self, arrays: Mapping[str, np.ndarray], name: str) -> list[np.ndarray]:
        """Matrix `name`'s arrays in the engine's panel layout, in the order of
        its `parts`: rows padded to whole panels (and f32/f16 columns to
        whole blocks) with zeros; a panel's values for one column contiguous."""
        return [np.ascontiguousarray(self.panel_view(arrays[part], i)) for i, part in enumerate(self.parts(name))]

    def panel_view(self, a: np.ndarray, part: int) -> np.ndarray:
        """Array `a`, part `part` of a matrix (its values for f32 and f16), in
        the panel layout of `panels`: a view of it where no padding is needed."""
        if not self.blocked:
            *lead, m, n = a.shape
            a = _pad(_pad(a, -1, -n % BLOCK), -2, -m % PANEL)
            a = a.reshape(*lead, a.shape[-2] // PANEL, PANEL, a.shape[-1] // BLOCK, BLOCK)
            return np.moveaxis(a, -3, -1)  # [..][T][kb][32][P]
        axis = -2 - len(self.blocks[part].per_block)  # the rows: [..][rows][kb](per_block) -> [..][T][kb](per_block)[P]
        a = _pad(a, axis, -a.shape[axis] % PANEL)
        a = a.reshape(*a.shape[:axis], a.shape[axis] // PANEL, PANEL, *a.shape[axis + 1:])
        return np.moveaxis(a, axis, -1)

    def panel_count(self, arrays: Mapping[str, np.ndarray], name: str) -> int:
        """Panel blocks (`PANEL` rows by `BLOCK` columns) of matrix (stack) `name`."""
        *lead, rows, columns = self.logical_shape(arrays, name)
        return int(np.prod(lead, dtype=np.int64)) * panel_blocks(rows, columns)

    def block_panels(self) -> list[np.ndarray]:
        """Each part's panels for one panel block (a matrix of `PANEL` rows
        and `BLOCK` columns), zeros: their shapes after `[panels][blocks]`
        and their dtypes are those of every matrix's panels."""
        example = {part: np.zeros(shape, dtype) for part, (shape, dtype) in self.shapes("m", (PANEL, BLOCK)).items()}
        return [a[0, 0] for a in self.panels(example, "m")]

    def logical_shape(self, arrays: Mapping[str, np.ndarray], name: str) -> tuple[int, ...]:
        """The `[rows][columns]` shape the stored arrays of `name` mean."""
        if not self.blocked:
            return tuple(arrays[name].shape)
        first = arrays[f"{name}.{self.blocks[0].suffix}"]
        *rows, blocks = first.shape[:first.ndim - len(self.blocks[0].per_block)]
        return (*rows, blocks * BLOCK)


_HALF_SCALES = (Part("scale", np.uint16), Part("offset", np.uint16))

FORMATS = {
    "f32": Format("f32", np.float32),
    "f16": Format("f16", np.uint16),
    # value = scale · code + offset, a block's scale and offset IEEE half bits
    "q8": Format("q8", blocks=(Part("q", np.uint8, (32,)), *_HALF_SCALES)),
    "q4": Format("q4", blocks=(Part("q", np.uint8, (16,)), *_HALF_SCALES)),  # two 4-bit codes a byte
    # value = d · sc · code - dmin · mn, code and sc signed bytes, d and dmin
    # IEEE half bits a block, sc and mn one per half block of 16 values:
    # holds the K-quants' super-blocks (a half d and dmin, 6- or 8-bit
    # sub-scales) and every other block type exactly (docs/FORMATS.md)
    "k8": Format("k8", blocks=(Part("q", np.uint8, (32,)), Part("d", np.uint16), Part("dmin", np.uint16),
                               Part("sc", np.uint8, (2,)), Part("mn", np.uint8, (2,)))),
    # Q4_K compactly: q4's nibbles, and for each block of 32 values the half
    # d and dmin of its super-block and its 6-bit scale and minimum as bytes:
    # value = d · sc · code - dmin · mn, as k8 computes it (0.6875 bytes a value)
    "q4k": Format("q4k", blocks=(Part("q", np.uint8, (16,)), Part("d", np.uint16), Part("dmin", np.uint16),
                                 Part("sc", np.uint8), Part("mn", np.uint8))),
    # Codes of 5 and 6 bits: q4's nibbles and planes `h` of the high bits, 4
    # bytes a high bit (`_wide`).  Q5_0 and Q5_1 as q4 (value = scale · code
    # + offset, 0.75 bytes a value), Q5_K as q4k (0.8125), Q6_K with a half d
    # a block and a signed byte sc a half block: value = d · sc · (code - 32)
    # (0.875).  Slower to decode than q8's and k8's byte codes: the mixed
    # storage keeps them for `COMPACT` (`kept`)
    "q5": Format("q5", blocks=(Part("q", np.uint8, (16,)), Part("h", np.uint8, (4,)), *_HALF_SCALES), fast=False),
    "q5k": Format("q5k", blocks=(Part("q", np.uint8, (16,)), Part("h", np.uint8, (4,)), Part("d", np.uint16),
                                 Part("dmin", np.uint16), Part("sc", np.uint8), Part("mn", np.uint8)), fast=False),
    "q6k": Format("q6k", blocks=(Part("q", np.uint8, (16,)), Part("h", np.uint8, (8,)), Part("d", np.uint16),
                                 Part("sc", np.uint8, (2,))), fast=False),
}

# A format's code in the mixed storage (`Mixed`, src/llm.fut's `mixed`): its place in `FORMATS`.
CODES = tuple(FORMATS)

# storage -> (format of the per-layer matrices, format of the embedding and head)
STORAGES = {"f32": ("f32", "f32"), "f16": ("f16", "f16"), "q8": ("q8", "q8"), "q4": ("q4", "q8")}
# The storage whose every matrix keeps a format of its own (`Mixed`).
MIXED = "mixed"
NAMES = (*STORAGES, MIXED)
# Asked of a GGUF file's load: the mixed storage with every matrix in the
# smallest format holding it, the slower ones too (`kept`).
COMPACT = "compact"
# What a load can be asked for.
CHOICES = (*NAMES, COMPACT)

# The GGUF tensor types each format holds exactly.
_BLOCKS = {"Q8_0", "Q5_0", "Q5_1", "Q4_0", "Q4_1"}  # blocks of 32 values, a half scale (and offset)
_K_QUANTS = {"Q6_K", "Q5_K", "Q4_K", "Q3_K", "Q2_K"}  # super-blocks of 256 values, 6- or 8-bit sub-scales of a half
EXACT = {"f32": {"F32", "F16", "BF16"} | _BLOCKS | _K_QUANTS, "f16": {"F16"}, "q8": _BLOCKS, "q4": {"Q4_0", "Q4_1"},
         "k8": _BLOCKS | _K_QUANTS, "q4k": {"Q4_K"}, "q5": {"Q5_0", "Q5_1"}, "q5k": {"Q5_K"},
         "q6k": {"Q6_K", "Q3_K"}}


def entry_prefix(architecture: str, storage: str) -> str:
    """The prefix of a model's entry points in src/llm.fut (`llama_q4_run`):
    GPT-2 has one storage, so its entry points name none (`gpt2_run`)."""
    return architecture if architecture == "gpt2" else f"{architecture}_{storage}"


def check_storage(storage: str) -> str:
    """`storage` if a load can be asked for it (`CHOICES`)."""
    if storage not in CHOICES:
        raise LlafError(f"unknown weight storage {storage!r}: choose one of {', '.join(CHOICES)}")
    return storage


def choose(layer_types: set[str], head_types: set[str]) -> str:
    """The storage for a file of these GGUF tensor types: one format for the
    layers and one for the embedding and head when the layers' format is the
    one each of their types keeps in the mixed storage (`kept`) and the
    head's holds its, else each matrix in its own (`MIXED`)."""
    for storage in ("q4", "q8", "f16"):
        layers, head = STORAGES[storage]
        if all(kept(t) == layers for t in layer_types) and head_types <= EXACT[head]:
            return storage
    return "f32" if layer_types | head_types <= {"F32", "BF16"} else MIXED


def kept(kind: str, compact: bool = False) -> str:
    """The format a tensor of GGUF type `kind` keeps in the mixed storage:
    the smallest holding it exactly among the `fast` formats, or among all
    when `compact` (docs/FORMATS.md: q5, q5k and q6k take less memory than
    q8 and k8, and the one-sequence step more time)."""
    return min((f for f in FORMATS if kind in EXACT[f] and (compact or FORMATS[f].fast)),
               key=lambda f: FORMATS[f].bytes_per_value)


@dataclass(frozen=True)
class Mixed:
    """A matrix, or a model's stack of them, each in a format of its own (the
    mixed storage): ``name.which`` (uint8, one a matrix: the index of its
    format in `FORMATS`) and, for each format used, the stack of the matrices
    in it, in order, as that format's arrays of matrix ``name.<format>``
    (``wq.q4.q``, ``wq.k8.d``).  The embedding and the head are stacks of one
    (a head tied to the embedding: an f32 matrix of no rows).  The engine
    takes each format's matrices in one pool of panel blocks (`pools`) and
    each stack as its formats and places in the pools (`places`)."""

    which: tuple[str, ...]  # each matrix's format
    stacked: bool           # a model's layers (`[L]` matrices), or one matrix

    name = MIXED

    @staticmethod
    def of(arrays: Mapping[str, np.ndarray], name: str, stacked: bool) -> Mixed:
        codes = arrays.get(f"{name}.which")
        if codes is None:
            raise LlafError(f"weights lack tensor {name + '.which'!r}")
        if codes.dtype != np.uint8 or codes.ndim != 1 or (not stacked and codes.shape != (1,)):
            raise LlafError(f"tensor {name + '.which'!r} has dtype {codes.dtype} and shape {codes.shape}, "
                            f"expected uint8 and {'one a layer' if stacked else '(1,)'}")
        if codes.size and int(codes.max()) >= len(CODES):
            raise LlafError(f"tensor {name + '.which'!r} names format {int(codes.max())}: there are {len(CODES)}")
        return Mixed(tuple(CODES[c] for c in codes), stacked)

    @property
    def used(self) -> list[str]:
        return [f for f in FORMATS if f in self.which]

    @property
    def blocked(self) -> bool:
        return any(FORMATS[f].blocked for f in self.used)

    def parts(self, name: str) -> list[str]:
        return [f"{name}.which", *(p for f in self.used for p in FORMATS[f].parts(f"{name}.{f}"))]

    def shapes(self, name: str, shape: tuple[int, ...]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """The arrays storing a matrix (a stack) of logical `shape`."""
        out = {f"{name}.which": ((shape[0] if self.stacked else 1,), np.dtype(np.uint8))}
        for f in self.used:
            out |= FORMATS[f].shapes(f"{name}.{f}", (self.which.count(f), *shape[-2:]))
        return out

    def logical_shape(self, arrays: Mapping[str, np.ndarray], name: str) -> tuple[int, ...]:
        f = self.used[0]
        matrix = FORMATS[f].logical_shape(arrays, f"{name}.{f}")[1:]
        return (len(self.which), *matrix) if self.stacked else matrix

    def decode(self, arrays: Mapping[str, np.ndarray], name: str) -> np.ndarray:
        stacks = {f: decode(arrays, f"{name}.{f}", f) for f in self.used}
        seen = dict.fromkeys(self.used, 0)
        out = []
        for f in self.which:
            out.append(stacks[f][seen[f]])
            seen[f] += 1
        return np.stack(out) if self.stacked else out[0]

    @staticmethod
    def stack(name: str, matrices: list[tuple[str, dict[str, np.ndarray]]]) -> dict[str, np.ndarray]:
        """The arrays of matrices `(format, arrays of matrix name)`, in order."""
        out = {f"{name}.which": np.array([CODES.index(f) for f, _ in matrices], np.uint8)}
        for f in CODES:
            group = [a for g, a in matrices if g == f]
            for part in FORMATS[f].parts(name) if group else []:
                out[f"{name}.{f}" + part.removeprefix(name)] = np.stack([a[part] for a in group])
        return out


def panel_blocks(rows: int, columns: int) -> int:
    """The panel blocks (`PANEL` rows by `BLOCK` columns) of a matrix."""
    return -(-rows // PANEL) * -(-columns // BLOCK)


def places(arrays: Mapping[str, np.ndarray], matrices: Mapping[str, Mixed]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each matrix stack's `which` and `at` for src/llm.fut's `mixed.stack`:
    the place of each matrix in its format's pool (`pools`: the stacks'
    matrices in the order of `matrices`, each stack's in order), in panel
    blocks.  A head of no rows (tied to the embedding) is no matrix at all."""
    start = dict.fromkeys(FORMATS, 0)
    out = {}
    for name, mixed in matrices.items():
        rows, columns = mixed.logical_shape(arrays, name)[-2:]
        which, at = [], []
        for f in mixed.which if rows else ():
            which.append(CODES.index(f))
            at.append(start[f])
            start[f] += panel_blocks(rows, columns)
        out[name] = (np.array(which, np.uint8), np.array(at, np.int64))
    return out


def pools(arrays: dict[str, np.ndarray], matrices: Mapping[str, Mixed], release: bool = False) -> Iterator[np.ndarray]:
    """Every format's pool, in `FORMATS` order and each format's parts' order:
    the panels (`Format.panels`) of its matrices, in the order of `places`,
    one panel block after another.  Made a pool at a time, each matrix
    stack's panels written into it where they go; with `release`, each
    stack's array is dropped from `arrays` once in its pool, so that a load
    holds no second copy of the weights."""
    for f, fmt in FORMATS.items():
        names = [f"{name}.{f}" for name, mixed in matrices.items() if f in mixed.which]
        counts = [fmt.panel_count(arrays, name) for name in names]
        for part, block in enumerate(fmt.block_panels()):
            pool = np.empty((sum(counts), *block.shape), block.dtype)
            at = 0
            for name, count in zip(names, counts, strict=True):
                key = fmt.parts(name)[part]
                view = fmt.panel_view(arrays[key], part)
                np.copyto(pool[at:at + count].reshape(view.shape), view)
                at += count
                if release:
                    del view, arrays[key]
            yield pool


def _pad(a: np.ndarray, axis: int, extra: int) -> np.ndarray:
    """`a` with `extra` zeros appended along `axis`."""
    if extra == 0:
        return a
    widths = [(0, 0)] * a.ndim
    widths[axis] = (0, extra)
    return np.pad(a, widths)


def _half_bits(raw: np.ndarray) -> np.ndarray:
    """Little-endian float16 fields of a byte array, as their uint16 bits."""
    return np.ascontiguousarray(raw).view("<u2").astype(np.uint16)[..., 0]


def _scaled_half(bits: np.ndarray, factor: int, name: str) -> np.ndarray:
    """The half bits of `factor` times the halves `bits`, which must be exact:
    a power-of-two multiple of a half is one unless it overflows."""
    scaled = np.float32(factor) * bits.view(np.float16).astype(np.float32)
    half = scaled.astype(np.float16)
    with np.errstate(invalid="ignore"):
        exact = (half.astype(np.float32) == scaled) | np.isnan(scaled)
    if not exact.all():
        raise LlafError(f"tensor {name!r} has a block scale too large to store its offset as a half; "
                        f"load it with storage='f32'")
    return half.view(np.uint16)


def encode_gguf(kind: str, raw: np.ndarray, shape: tuple[int, ...], fmt: str, name: str) -> dict[str, np.ndarray]:
    """The arrays of format `fmt` for a GGUF tensor of type `kind`, whose
    bytes are `raw`, meaning a float matrix of `shape`.  Exact, or an error."""
    if kind not in EXACT[fmt]:
        raise LlafError(f"tensor {name!r} of type {kind} cannot be stored as {fmt} exactly")
    if fmt == "f16":
        return {name: np.ascontiguousarray(raw).view("<u2").reshape(shape).astype(np.uint16)}
    rows = shape[:-1]
    blocks = (*rows, shape[-1] // BLOCK)
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    size = GGML_QUANT_SIZES[GGMLQuantizationType[kind]][1]  # bytes a block
    b = np.ascontiguousarray(raw).view(np.uint8).reshape(-1, size)

    def stored(*arrays: np.ndarray) -> dict[str, np.ndarray]:  # one row a block -> the format's arrays
        return {f"{name}.{p.suffix}": a.reshape(*blocks, *p.per_block)
                for p, a in zip(FORMATS[fmt].blocks, arrays, strict=True)}

    if kind in _K_QUANTS or fmt == "k8":
        codes, d, dmin, sc, mn = _k8_blocks(kind, b)
        if fmt == "k8":
            return stored(codes, d, dmin, sc, mn)
        if fmt == "q6k":  # k8's signed codes as Q6_K's, code - 32 (Q3_K's, -4 to 3, are 28 to 35)
            return stored(*_wide((codes + np.uint8(32)) & 63, fmt), d, sc)
        # Q4_K, Q5_K: a scale and minimum a block (k8 repeats them for its halves)
        return stored(*_wide(codes, fmt), d, dmin, sc[:, 0], mn[:, 0])
    scale = _half_bits(b[:, 0:2])
    if kind == "Q8_0":  # value = d · q, q a signed byte: code q + 128, offset -128 d
        codes = (b[:, 2:].view(np.int8).astype(np.int16) + 128).astype(np.uint8)
        return stored(codes, scale, _scaled_half(scale, -128, name))
    # value = d · q - 16 d (Q5_0), d · q - 8 d (Q4_0) or d · q + m (Q5_1, Q4_1)
    factor = {"Q5_0": -16, "Q4_0": -8}.get(kind)
    offset = _scaled_half(scale, factor, name) if factor else _half_bits(b[:, 2:4])
    if fmt == "q4":  # the file's nibbles as they are
        return stored(b[:, _HEAD[kind]:], scale, offset)
    codes = _codes(kind, b)
    return stored(*(_wide(codes, fmt) if fmt != "q8" else (codes,)), scale, offset)


def _high_bits(fmt: str) -> int:
    """Bits above the nibble of a code of block format `fmt` (its planes `h`: 4 bytes a bit)."""
    return next((p.per_block[0] // 4 for p in FORMATS[fmt].blocks if p.suffix == "h"), 0)


def _plane_shifts(hb: int) -> np.ndarray:
    """Where each of a plane byte's `4 // hb` column pairs starts."""
    return (np.arange(4 // hb) * 2 * hb).astype(np.uint8)


def _wide(codes: np.ndarray, fmt: str) -> tuple[np.ndarray, ...]:
    """Codes `[blocks][32]` of format `fmt`'s 4 + hb bits (`_high_bits`) as
    its arrays `q` and, if hb > 0, `h` (src/matrix.fut `wide_bits`): value j
    of a block in the low nibble of byte j of `q`, value j + 16 in the high
    one; the pair's high bits, value j's hb bits then value j + 16's, in
    plane byte j // (4 // hb) of `h`, from bit (j % (4 // hb)) · 2·hb."""
    first, second = codes[:, :16], codes[:, 16:]
    q = (first & 15) | _shifted(second, 4)
    hb = _high_bits(fmt)
    if not hb:
        return (q,)
    pairs = ((first >> 4) | _shifted(second >> 4, hb)).reshape(-1, 4 * hb, 4 // hb)
    planes = pairs[..., 0].copy()
    for k, shift in enumerate(_plane_shifts(hb)[1:], 1):  # a loop over 1 to 3 pairs a byte: whole arrays each
        planes |= _shifted(pairs[..., k], int(shift))
    return q, planes


def _unwide(arrays: Mapping[str, np.ndarray], name: str, fmt: str) -> np.ndarray:
    """The codes `[..][blocks][32]` of matrix `name` in nibble format `fmt` (q4, q4k, q5, q5k, q6k)."""
    q = arrays[f"{name}.q"]
    codes = np.concatenate([q & 15, q >> 4], axis=-1)
    hb = _high_bits(fmt)
    if hb:
        pairs = (arrays[f"{name}.h"][..., None] >> _plane_shifts(hb)).reshape(q.shape)  # [..][16], 2·hb bits each
        mask = np.uint8((1 << hb) - 1)
        codes |= _shifted(np.concatenate([pairs & mask, (pairs >> hb) & mask], axis=-1), 4)
    return codes


def _shifted(a: np.ndarray, bits: int) -> np.ndarray:
    """Bytes `a` shifted left by `bits`, the high bits dropped: as a
    multiplication, which numpy vectorizes (its byte shift left it does not:
    ten times slower, measured)."""
    return a * np.uint8(1 << bits)


def _fields(packed: np.ndarray, bits: int) -> np.ndarray:
    """Bit fields of `bits` bits of bytes, as separate codes: the bytes
    `packed` [..][w] as [..][fields][w], field k of each byte at k.  Whole
    arrays at a time (a broadcast shift over a small axis costs numpy a loop
    per 32 bytes)."""
    p = np.ascontiguousarray(packed)
    mask = np.uint8((1 << bits) - 1)
    return np.stack([(p >> np.uint8(k)) & mask for k in range(0, 8, bits)], axis=-2)


def _k8_blocks(kind: str, b: np.ndarray) -> tuple[np.ndarray, ...]:
    """GGUF blocks `b` (a row of bytes each) as k8's arrays, one row per
    block of 32 values: codes (signed bytes), d, dmin (half bits), sc
    (signed bytes) and mn, the last two for each half of the block.  The
    values gguf-py's dequantization gives, d · sc · code - dmin · mn, are
    exact in f32 for every type: at most 24 significant bits before the one
    subtraction (Q6_K: an 11-bit half times an 8-bit scale times a 6-bit
    code).  Codes are bytes throughout: a signed code is its byte, wrapped."""
    n = b.shape[0]
    if kind in _K_QUANTS:
        from gguf import quants

        if kind == "Q2_K":  # scales 16 (a 4-bit scale and minimum per 16 values), qs 64 (2-bit), d, dmin
            scales = b[:, :16]
            codes = _fields(b[:, 16:80].reshape(n, 2, 32), 2).reshape(n, 8, 32)
            d, dmin = _half_bits(b[:, 80:82]), _half_bits(b[:, 82:84])
            sc, mn = (scales & 15).reshape(n, 8, 2), (scales >> 4).reshape(n, 8, 2)
        elif kind == "Q3_K":  # hmask 32, qs 64, 12 bytes of 6-bit scales (less 32: signed), d
            hmask, packed = b[:, :32], b[:, 96:108]
            low, high = _fields(packed[:, :8], 4).reshape(n, 16), _fields(packed[:, 8:], 2).reshape(n, 16)
            sc = ((low | _shifted(high, 4)) - np.uint8(32)).reshape(n, 8, 2)
            third = _fields(hmask, 1)  # [n][8][32]: a block's third bits
            codes = (_fields(b[:, 32:96].reshape(n, 2, 32), 2).reshape(n, 8, 32) | _shifted(third, 2)) - np.uint8(4)
            d, dmin = _half_bits(b[:, 108:110]), np.zeros(n, np.uint16)
            mn = np.zeros((n, 8, 2), np.uint8)
        elif kind == "Q6_K":  # ql 128, qh 64, scales 16 (signed, one per 16 values), d
            low = _fields(b[:, :128].reshape(n, 2, 64), 4).reshape(n, 8, 32)
            high = _fields(b[:, 128:192].reshape(n, 2, 32), 2).reshape(n, 8, 32)
            codes = (low | _shifted(high, 4)) - np.uint8(32)
            d, dmin = _half_bits(b[:, 208:210]), np.zeros(n, np.uint16)
            sc, mn = b[:, 192:208].reshape(n, 8, 2), np.zeros((n, 8, 2), np.uint8)
        else:  # d, dmin, 12 bytes of 6-bit scales and minima (one per 32 values), [qh 32,] qs 128
            d, dmin, scales = _half_bits(b[:, 0:2]), _half_bits(b[:, 2:4]), b[:, 4:16]
            codes = _fields(b[:, -128:].reshape(n, 4, 32), 4).reshape(n, 8, 32)
            if kind == "Q5_K":
                codes |= _shifted(_fields(b[:, 16:48], 1), 4)
            sc, mn = (np.repeat(a[..., None], 2, -1) for a in quants.Q4_K.get_scale_min(scales))  # one a half block
        blocks = lambda a: a.reshape(n * 8, *a.shape[2:])  # noqa: E731  (a super-block's 8 blocks of 32)
        return blocks(codes), np.repeat(d, 8), np.repeat(dmin, 8), blocks(sc), blocks(mn)
    ones, zeros = np.ones((n, 2), np.uint8), np.zeros((n, 2), np.uint8)
    d, none = _half_bits(b[:, 0:2]), np.zeros(n, np.uint16)
    if kind == "Q8_0":  # value = d · q, q a signed byte
        return b[:, 2:].copy(), d, none, ones, zeros
    codes = _codes(kind, b)
    if kind in ("Q5_0", "Q4_0"):  # value = d · (q - 16) or d · (q - 8): signed codes (bytes wrap)
        return codes - np.uint8(16 if kind == "Q5_0" else 8), d, none, ones, zeros
    # Q5_1, Q4_1: value = d · q + m; dmin = -m, the sign bit flipped
    return codes, d, _half_bits(b[:, 2:4]) ^ np.uint16(0x8000), ones, ones


# Bytes before the codes in a block of 32 values: its half scale (and half offset)
_HEAD = {"Q4_0": 2, "Q4_1": 4, "Q5_0": 2, "Q5_1": 4}


def _codes(kind: str, b: np.ndarray) -> np.ndarray:
    """The unsigned codes, value j of a block at j, of Q4_0, Q4_1, Q5_0 or
    Q5_1 blocks `b`: after the halves, Q5's 32 fifth bits (bit j of a
    little-endian word: value j's), then nibbles (value j in the low nibble
    of byte j, value j + 16 in the high one)."""
    start = _HEAD[kind]
    fifth = None
    if kind in ("Q5_0", "Q5_1"):
        fifth = np.unpackbits(b[:, start:start + 4], axis=1, bitorder="little")
        start += 4
    packed = b[:, start:]
    codes = np.concatenate([packed & 15, packed >> 4], axis=1)
    return codes if fifth is None else codes | _shifted(fifth, 4)


def decode(arrays: Mapping[str, np.ndarray], name: str, fmt: str) -> np.ndarray:
    """Matrix `name` as float32 (for tests and conversions; the engine never does this)."""
    f = FORMATS[fmt]
    if fmt == "f32":
        return arrays[name]
    half = lambda a: a.view(np.float16).astype(np.float32)  # noqa: E731
    part = lambda suffix: arrays[f"{name}.{suffix}"]  # noqa: E731
    if fmt == "f16":
        return half(arrays[name])
    if fmt == "k8":
        q = part("q")
        scale = half(part("d"))[..., None] * part("sc").view(np.int8).astype(np.float32)  # [..][blocks][2], exact
        offset = -(half(part("dmin"))[..., None] * part("mn").astype(np.float32))
        codes = q.view(np.int8).astype(np.float32).reshape(*q.shape[:-1], 2, 16)
        values = scale[..., None] * codes + offset[..., None]
        return values.reshape(f.logical_shape(arrays, name)).astype(np.float32)
    codes = (part("q") if fmt == "q8" else _unwide(arrays, name, fmt)).astype(np.float32)
    if fmt == "q6k":  # d · sc a half block (exact) times code - 32, as gguf-py computes it
        values = (half(part("d"))[..., None] * part("sc").view(np.int8)).repeat(16, axis=-1) * (codes - 32)
        return values.reshape(f.logical_shape(arrays, name))
    if fmt in ("q4k", "q5k"):
        scale, offset = half(part("d")) * part("sc"), -(half(part("dmin")) * part("mn"))  # exact
    else:
        scale, offset = half(part("scale")), half(part("offset"))
    values = scale[..., None] * codes + offset[..., None]
    return values.reshape(f.logical_shape(arrays, name)).astype(np.float32)


def finite(arrays: Mapping[str, np.ndarray], name: str, fmt: str) -> bool:
    """Whether matrix `name` in format `fmt` holds only finite values, seen
    without decoding it: half bits (an f16 matrix, a block format's scales
    and offsets) when no exponent is all ones; a block format's values are
    then finite too (its codes are small integers, and scales from float16
    fields times them cannot overflow)."""
    if fmt == "f32":
        a = arrays[name]
        # min and max propagate NaN: two passes, without an array of flags as large as the matrix
        return a.size == 0 or bool(np.isfinite(a.min()) and np.isfinite(a.max()))
    f = FORMATS[fmt]
    parts = [arrays[name]] if fmt == "f16" else [arrays[f"{name}.{p.suffix}"] for p in f.blocks if p.dtype == np.uint16]
    return not any(((bits & 0x7C00) == 0x7C00).any() for bits in parts)
