-- | Weight matrices in the formats llaf keeps in memory, and their products.
--
-- Layout.  An `[m][n]` matrix is stored in panels of `P` (32) rows; inside a
-- panel, each column's `P` values are contiguous, so one column of a panel
-- is one register vector (src/vec.fut) and a product adds `P` rows' partial
-- sums per step without any horizontal addition.  The columns are grouped
-- in blocks of 32 (the GGUF block size); `kb` is the number of blocks of a
-- row, and the last block and the last panel are padded with zeros (f32 and
-- f16 only: block formats have whole blocks).  The `rows` field is empty:
-- it only carries the logical row count `m` in the type.
--
--   f32   4 bytes a value     transformers models, F32 and BF16 files, GPT-2
--   f16   2 bytes a value     F16 files: IEEE half bits, widened exactly
--   q8    1.125 bytes a value Q8_0, Q4_0 and Q4_1 blocks: a byte code per
--                             value, value = scale · code + offset
--   q4    0.625 bytes a value Q4_0 and Q4_1 blocks: two 4-bit codes per
--                             byte, the low nibble of byte j is column j of
--                             the block, the high nibble column j + 16 (the
--                             GGUF layout)
--   k8    1.25 bytes a value  every block type, the K-quants too: a signed
--                             byte code per value, value = d · sc · code -
--                             dmin · mn, with half d and dmin a block and
--                             byte sc and mn per half block of 16 values
--   q4k   0.6875 bytes a value Q4_K: q4's nibbles, with k8's decoding a
--                             block (half d and dmin, byte sc and mn)
--   q5    0.75 bytes a value  Q5_0 and Q5_1: q4's nibbles and planes of
--                             the fifth bits, q4's scale and offset
--   q5k   0.8125 bytes a value Q5_K: q4k with planes of the fifth bits
--   q6k   0.875 bytes a value Q6_K: nibbles and planes of the two high
--                             bits, value = d · sc · (code - 32), half d a
--                             block and signed byte sc a half block
--
-- q5, q5k and q6k take less memory than q8 and k8 and more time to decode
-- (a shift, a mask and an `or` a value): llaf keeps them when asked for
-- the `compact` storage (llaf/storage.py `kept`, docs/FORMATS.md).
--
-- A block's scale and offset are IEEE half bits, as in the file: decode is
-- bound by the bytes it reads (docs/PERFORMANCE.md), and f32 scales made
-- the quantized matrices a fifth larger than the file's.
--
-- Every format decodes to exactly the f32 value the file means, inside the
-- product: no f32 copy of a quantized matrix is kept.
--
-- The order of the sums.  Every product computes row `i` times a token `x`
-- the same way, whatever the format, the number of tokens or the path:
--
--   y_i = Σ_{c mod 32 < 16} w_ic · x_c  +  Σ_{c mod 32 ≥ 16} w_ic · x_c
--
-- each sum taken in increasing `c` with fused multiply-adds.  Two running
-- sums per row halve the dependency chain of a one-token product, and a
-- token's result does not depend on the tokens it is multiplied with: a
-- sequence decoded in a batch gets the logits it gets alone, bit for bit.

import "vec"
import "target"

-- | Rows per panel: the lanes of a register vector.
module lanes = vec32
def P : i64 = 32

-- | A register vector's lanes as an array of `P`.
def to_panel 'a (v: lanes.t a) : [P]a = lanes.to_array v :> [P]a

-- | Panels needed for `m` rows.
#[inline]
def panels (m: i64) : i64 = (m + P - 1) / P

-- | Values of an IEEE 754 half-precision bit pattern, exactly, with integer
-- operations and one multiplication (Futhark's C backends emulate `f16`
-- slowly): the half's exponent and fraction bits placed where an f32's go
-- make a number 2^112 too small, normal or subnormal, which the
-- multiplication by 2^112 scales exactly (subnormal halves land on subnormal
-- f32s, so this needs the default floating-point environment: no
-- flush-to-zero, see the Makefile).  Infinities and NaNs are set apart.
def f16_bits_to_f32 (h: u16) : f32 =
  let mag = u32.u16 (h & 0x7fff) << 13
  let sign = u32.u16 (h & 0x8000) << 16
  let v = if mag >= 0x0f800000 then f32.from_bits (mag | 0x70000000)  -- infinities and NaNs
          else f32.from_bits mag * f32.from_bits 0x77800000          -- 2^112
  in f32.from_bits (f32.to_bits v | sign)

-- | The plane byte of a block holding the high bits of column pair `j`
-- (`wide_bits`).
#[inline]
def plane_byte (hb: i64) (j: i64) : i64 = j / (4 / hb)

-- | The codes of columns `32·b + j` and `32·b + 16 + j` (`j < 16`) of a
-- row of a format with codes of 4 + `hb` bits (q5, q5k: 1, q6k: 2): the
-- nibbles of byte `q` (as q4 packs them) and, above them, the high bits of
-- plane byte `h`, which holds those of `4 / hb` such pairs: pair `j`'s in
-- byte `j / (4 / hb)` (`plane_byte`), from bit `(j % (4 / hb)) · 2·hb`,
-- column `j`'s `hb` bits first.  In any integral type holding a byte: the
-- browser's codes unpack them as bytes (`wide_bytes`), the native ones in
-- 32-bit lanes (`wide_words`).  (`hb` a literal at each call: a size would
-- be a variable in the C, the shifts computed at run time.  `>>>`: for a
-- module's `I.t`, `>>` is the arithmetic shift even on `u8`.)
module wide_bits (I: integral) = {
  #[inline]
  def pair (hb: i64) (q: I.t) (h: I.t) (j: i64) : (I.t, I.t) =
    let s = I.i64 (j % (4 / hb) * 2 * hb)
    let (bits, four, low) = (I.i64 hb, I.i64 4, I.i64 15)
    let mask = I.((i64 1 << bits) - i64 1)
    in (I.((q & low) | (((h >>> s) & mask) << four)),
        I.((q >>> four) | (((h >>> (s + bits)) & mask) << four)))
}
module wide_bytes = wide_bits u8
module wide_words = wide_bits i32

-- | How the block formats widen their byte codes to f32, exactly.  Two
-- ways, the same values: `f32.u8`, one conversion instruction a register on
-- x86 (what the native builds use: the exponent trick below measured slower
-- there), and the code placed in the low bits of 2^23's significand, then
-- 2^23 subtracted: the WebAssembly build's (LLVM's WebAssembly backend
-- converts u8 lanes one by one, extracting and reinserting each lane; this
-- way is a widening shuffle, an `or` and an add a vector, and the browser's
-- products ran twice as fast with it, docs/PERFORMANCE.md).
module type codes = {
  val u8 : u8 -> f32
  -- | A byte as a signed code.
  val i8 : u8 -> f32
  -- | Byte `q`'s two 4-bit codes, the low nibble first (q4, q4k).
  val nibbles : u8 -> (f32, f32)
  -- | The codes of a column pair of a format with `hb` high bits, less
  -- `bias`: `wide_codes hb q h j bias` is `wide_bits`'s `pair hb q h j` as
  -- numbers, minus `bias` (q5, q5k, q6k).
  val wide_codes : i64 -> u8 -> u8 -> i64 -> i32 -> (f32, f32)
}

module native_codes : codes = {
  def u8 (c: u8) : f32 = f32.u8 c
  def i8 (c: u8) : f32 = f32.i8 (i8.u8 c)
  -- Unpacked in 32-bit lanes: in byte lanes clang's AVX2 code masked and
  -- shifted 8 codes at a time, in 8-byte registers; here the load widens
  -- them at once (a q4 matrix-vector product 21 % faster, q5 and q6k 14
  -- and 19 %, docs/PERFORMANCE.md).
  def nibbles (q: u8) : (f32, f32) =
    let q = i32.u8 q
    in (f32.i32 (q & 15), f32.i32 (q >> 4))
  #[inline]
  def wide_codes (hb: i64) (q: u8) (h: u8) (j: i64) (bias: i32) : (f32, f32) =
    let (lo, hi) = wide_words.pair hb (i32.u8 q) (i32.u8 h) j
    in (f32.i32 (lo - bias), f32.i32 (hi - bias))
}

module wasm_codes : codes = {
  def unsigned (c: u8) : f32 = f32.from_bits (0x4b000000 | u32.u8 c) - 8388608f32  -- 2^23
  -- (c xor 128 is the signed code plus 128)
  def signed (c: u8) : f32 = f32.from_bits (0x4b000000 | u32.u8 (c ^ 0x80)) - 8388736f32  -- 2^23 + 128
  def nibbles (q: u8) : (f32, f32) = (unsigned (q & 15), unsigned (q >> 4))
  #[inline]
  def wide_codes (hb: i64) (q: u8) (h: u8) (j: i64) (bias: i32) : (f32, f32) =
    let (lo, hi) = wide_bytes.pair hb q h j
    -- (a biased code wraps as a byte: a signed one)
    in if bias == 0 then (unsigned lo, unsigned hi) else (signed (lo - u8.i32 bias), signed (hi - u8.i32 bias))
  def u8 = unsigned
  def i8 = signed
}

-- | Where row `i`'s unit `u` (a column, a code byte or a block) is in a
-- format's flattened `[panels][U][P]` array of `U` units per row.
def unit (U: i64) (i: i64) (u: i64) : i64 = ((i / P) * U + u) * P + i % P

-- | A weight format: how its panels are stored and decoded.
module type format = {
  -- | An `[m][n]` matrix with `kb` blocks of 32 columns per row.
  type mat [m][kb]
  -- | Row `r` of panel `t`: its columns `32·b + j` and `32·b + 16 + j`
  -- (`j < 16`), decoded.
  val pair [m][kb] : mat [m][kb] -> i64 -> i64 -> i64 -> i64 -> (f32, f32)
  -- | Element `(i, c)`, decoded.  (The formats index flattened arrays here:
  -- indexing the panels directly inside a map over tokens made the compiler
  -- transpose the whole embedding on every call, to "coalesce" the reads.)
  val get [m][kb] : mat [m][kb] -> i64 -> i64 -> f32
}

type f32_panel_arrays [m][kb] = {w: [(m + P - 1) / P][kb][32][P]f32, rows: [m]()}

module f32_panels : format with mat [m][kb] = f32_panel_arrays [m][kb] = {
  type mat [m][kb] = f32_panel_arrays [m][kb]
  def pair [m][kb] (a: mat [m][kb]) (t: i64) (b: i64) (j: i64) (r: i64) : (f32, f32) =
    (#[unsafe] a.w[t, b, j, r], #[unsafe] a.w[t, b, j + 16, r])
  def get [m][kb] (a: mat [m][kb]) (i: i64) (c: i64) : f32 =
    (flatten (flatten (flatten a.w)))[unit (kb * 32) i c]
}

type f16_panel_arrays [m][kb] = {w: [(m + P - 1) / P][kb][32][P]u16, rows: [m]()}

module f16_panels : format with mat [m][kb] = f16_panel_arrays [m][kb] = {
  type mat [m][kb] = f16_panel_arrays [m][kb]
  def pair [m][kb] (a: mat [m][kb]) (t: i64) (b: i64) (j: i64) (r: i64) : (f32, f32) =
    (f16_bits_to_f32 (#[unsafe] a.w[t, b, j, r]), f16_bits_to_f32 (#[unsafe] a.w[t, b, j + 16, r]))
  def get [m][kb] (a: mat [m][kb]) (i: i64) (c: i64) : f32 =
    f16_bits_to_f32 (flatten (flatten (flatten a.w)))[unit (kb * 32) i c]
}

-- | Blocks of 32 byte codes sharing a scale and an offset.
type q8_panel_arrays [m][kb] = {q: [(m + P - 1) / P][kb][32][P]u8, scale: [(m + P - 1) / P][kb][P]u16,
                               offset: [(m + P - 1) / P][kb][P]u16, rows: [m]()}

module q8_panels_with (C: codes) : format with mat [m][kb] = q8_panel_arrays [m][kb] = {
  type mat [m][kb] = q8_panel_arrays [m][kb]
  def decode (s: f32) (o: f32) (c: u8) : f32 = s * C.u8 c + o
  def pair [m][kb] (a: mat [m][kb]) (t: i64) (b: i64) (j: i64) (r: i64) : (f32, f32) =
    let (s, o) = (f16_bits_to_f32 (#[unsafe] a.scale[t, b, r]), f16_bits_to_f32 (#[unsafe] a.offset[t, b, r]))
    in (decode s o (#[unsafe] a.q[t, b, j, r]), decode s o (#[unsafe] a.q[t, b, j + 16, r]))
  def get [m][kb] (a: mat [m][kb]) (i: i64) (c: i64) : f32 =
    let block = unit kb i (c / 32)
    in decode (f16_bits_to_f32 (flatten (flatten a.scale))[block]) (f16_bits_to_f32 (flatten (flatten a.offset))[block])
              (flatten (flatten (flatten a.q)))[unit (kb * 32) i c]
}
module q8_panels = q8_panels_with native_codes

-- | The 4-bit code of element `(i, c)` of nibble-packed panels (q4, q4k):
-- column `j` of a block in the low nibble of its byte `j`, `j + 16` in the
-- high one.
def nibble [t][kb] (q: [t][kb][16][P]u8) (i: i64) (c: i64) : u8 =
  let (b, j) = (c / 32, c % 32)
  let code = (flatten (flatten (flatten q)))[unit (kb * 16) i (b * 16 + j % 16)]
  in if j < 16 then code & 15 else code >> 4

-- | Blocks of 32 4-bit codes, two to a byte, sharing a scale and an offset.
type q4_panel_arrays [m][kb] = {q: [(m + P - 1) / P][kb][16][P]u8, scale: [(m + P - 1) / P][kb][P]u16,
                               offset: [(m + P - 1) / P][kb][P]u16, rows: [m]()}

module q4_panels_with (C: codes) : format with mat [m][kb] = q4_panel_arrays [m][kb] = {
  type mat [m][kb] = q4_panel_arrays [m][kb]
  def decode (s: f32) (o: f32) (c: u8) : f32 = s * C.u8 c + o
  def pair [m][kb] (a: mat [m][kb]) (t: i64) (b: i64) (j: i64) (r: i64) : (f32, f32) =
    let (s, o) = (f16_bits_to_f32 (#[unsafe] a.scale[t, b, r]), f16_bits_to_f32 (#[unsafe] a.offset[t, b, r]))
    let (lo, hi) = C.nibbles (#[unsafe] a.q[t, b, j, r])
    in (s * lo + o, s * hi + o)
  def get [m][kb] (a: mat [m][kb]) (i: i64) (c: i64) : f32 =
    let block = unit kb i (c / 32)
    in decode (f16_bits_to_f32 (flatten (flatten a.scale))[block]) (f16_bits_to_f32 (flatten (flatten a.offset))[block])
              (nibble a.q i c)
}
module q4_panels = q4_panels_with native_codes

-- | The code of element `(i, c)` of panels of codes of 4 + `hb` bits
-- (`H` = 4·hb plane bytes a block): `wide_bytes.pair`'s of its column pair.
def wide [t][kb][H] (hb: i64) (q: [t][kb][16][P]u8) (h: [t][kb][H][P]u8) (i: i64) (c: i64) : u8 =
  let (b, j) = (c / 32, c % 16)
  let byte = (flatten (flatten (flatten q)))[unit (kb * 16) i (b * 16 + j)]
  let plane = (flatten (flatten (flatten h)))[unit (kb * H) i (b * H + plane_byte hb j)]
  let (lo, hi) = wide_bytes.pair hb byte plane j
  in if c % 32 < 16 then lo else hi

-- | Blocks of 32 5-bit codes (nibbles and a plane of fifth bits, `wide`)
-- sharing a scale and an offset: Q5_0 (offset -16 · scale) and Q5_1.
type q5_panel_arrays [m][kb] = {q: [(m + P - 1) / P][kb][16][P]u8, h: [(m + P - 1) / P][kb][4][P]u8,
                               scale: [(m + P - 1) / P][kb][P]u16, offset: [(m + P - 1) / P][kb][P]u16,
                               rows: [m]()}

module q5_panels_with (C: codes) : format with mat [m][kb] = q5_panel_arrays [m][kb] = {
  type mat [m][kb] = q5_panel_arrays [m][kb]
  def decode (s: f32) (o: f32) (c: u8) : f32 = s * C.u8 c + o
  def pair [m][kb] (a: mat [m][kb]) (t: i64) (b: i64) (j: i64) (r: i64) : (f32, f32) =
    let (s, o) = (f16_bits_to_f32 (#[unsafe] a.scale[t, b, r]), f16_bits_to_f32 (#[unsafe] a.offset[t, b, r]))
    let (lo, hi) = C.wide_codes 1 (#[unsafe] a.q[t, b, j, r]) (#[unsafe] a.h[t, b, plane_byte 1 j, r]) j 0
    in (s * lo + o, s * hi + o)
  def get [m][kb] (a: mat [m][kb]) (i: i64) (c: i64) : f32 =
    let block = unit kb i (c / 32)
    in decode (f16_bits_to_f32 (flatten (flatten a.scale))[block]) (f16_bits_to_f32 (flatten (flatten a.offset))[block])
              (wide 1 a.q a.h i c)
}
module q5_panels = q5_panels_with native_codes

-- | Blocks of 32 signed byte codes with a half `d` and `dmin` and, for each
-- half block of 16 values, a signed byte scale `sc` and a byte `mn`: the
-- K-quants' super-blocks (a half scale, 6- or 8-bit sub-scales) re-laid
-- out block by block, and every 32-value block type (`sc` = 1).  `d · sc`
-- and `dmin · mn` are exact in f32, and so is `d · sc · code`: the value is
-- one rounding of the exact one, as gguf-py's dequantization computes it.
type k8_panel_arrays [m][kb] = {q: [(m + P - 1) / P][kb][32][P]u8, d: [(m + P - 1) / P][kb][P]u16,
                                dmin: [(m + P - 1) / P][kb][P]u16, sc: [(m + P - 1) / P][kb][2][P]u8,
                                mn: [(m + P - 1) / P][kb][2][P]u8, rows: [m]()}

module k8_panels_with (C: codes) : format with mat [m][kb] = k8_panel_arrays [m][kb] = {
  type mat [m][kb] = k8_panel_arrays [m][kb]
  def code (c: u8) : f32 = C.i8 c
  -- half `h`'s scale and offset of row `r` of block `b` in panel `t`
  def scales [m][kb] (a: mat [m][kb]) (t: i64) (b: i64) (h: i64) (r: i64) : (f32, f32) =
    (f16_bits_to_f32 (#[unsafe] a.d[t, b, r]) * code (#[unsafe] a.sc[t, b, h, r]),
     -(f16_bits_to_f32 (#[unsafe] a.dmin[t, b, r]) * C.u8 (#[unsafe] a.mn[t, b, h, r])))
  def pair [m][kb] (a: mat [m][kb]) (t: i64) (b: i64) (j: i64) (r: i64) : (f32, f32) =
    let half h c = let (s, o) = scales a t b h r in s * code (#[unsafe] a.q[t, b, c, r]) + o
    in (half 0 j, half 1 (j + 16))
  def get [m][kb] (a: mat [m][kb]) (i: i64) (c: i64) : f32 =
    let (b, j) = (c / 32, c % 32)
    let block = unit kb i b
    let half = unit (kb * 2) i (b * 2 + j / 16)
    let s = f16_bits_to_f32 (flatten (flatten a.d))[block] * code (flatten (flatten (flatten a.sc)))[half]
    let o = -(f16_bits_to_f32 (flatten (flatten a.dmin))[block] * C.u8 (flatten (flatten (flatten a.mn)))[half])
    in s * code (flatten (flatten (flatten a.q)))[unit (kb * 32) i c] + o
}
module k8_panels = k8_panels_with native_codes

-- | Q4_K's blocks of 32 4-bit codes (packed as q4's), each block with the
-- half `d` and `dmin` of its super-block and its 6-bit scale `sc` and
-- minimum `mn` as bytes: value = d · sc · code - dmin · mn, computed as
-- k8 computes it, so exactly as gguf-py's dequantization rounds it.
type q4k_panel_arrays [m][kb] = {q: [(m + P - 1) / P][kb][16][P]u8, d: [(m + P - 1) / P][kb][P]u16,
                                 dmin: [(m + P - 1) / P][kb][P]u16, sc: [(m + P - 1) / P][kb][P]u8,
                                 mn: [(m + P - 1) / P][kb][P]u8, rows: [m]()}

-- | The decoding of Q4_K's and Q5_K's blocks (q4k, q5k).
module k_blocks (C: codes) = {
  def decode (s: f32) (o: f32) (c: u8) : f32 = s * C.u8 c + o
  -- | A block's scale and offset.  (Inlined: as a function, it was called
  -- for every value, a sixth of a batched step's time.)
  #[inline]
  def scales (d: u16) (dmin: u16) (sc: u8) (mn: u8) : (f32, f32) =
    (f16_bits_to_f32 d * C.u8 sc, -(f16_bits_to_f32 dmin * C.u8 mn))
}

module q4k_panels_with (C: codes) : format with mat [m][kb] = q4k_panel_arrays [m][kb] = {
  type mat [m][kb] = q4k_panel_arrays [m][kb]
  open k_blocks C
  def pair [m][kb] (a: mat [m][kb]) (t: i64) (b: i64) (j: i64) (r: i64) : (f32, f32) =
    let (s, o) = scales (#[unsafe] a.d[t, b, r]) (#[unsafe] a.dmin[t, b, r]) (#[unsafe] a.sc[t, b, r])
                        (#[unsafe] a.mn[t, b, r])
    let (lo, hi) = C.nibbles (#[unsafe] a.q[t, b, j, r])
    in (s * lo + o, s * hi + o)
  def get [m][kb] (a: mat [m][kb]) (i: i64) (c: i64) : f32 =
    let block = unit kb i (c / 32)
    let (s, o) = scales (flatten (flatten a.d))[block] (flatten (flatten a.dmin))[block]
                        (flatten (flatten a.sc))[block] (flatten (flatten a.mn))[block]
    in decode s o (nibble a.q i c)
}
module q4k_panels = q4k_panels_with native_codes

-- | Q5_K's blocks: q4k's with a plane of fifth bits (`wide`).
type q5k_panel_arrays [m][kb] = {q: [(m + P - 1) / P][kb][16][P]u8, h: [(m + P - 1) / P][kb][4][P]u8,
                                 d: [(m + P - 1) / P][kb][P]u16, dmin: [(m + P - 1) / P][kb][P]u16,
                                 sc: [(m + P - 1) / P][kb][P]u8, mn: [(m + P - 1) / P][kb][P]u8, rows: [m]()}

module q5k_panels_with (C: codes) : format with mat [m][kb] = q5k_panel_arrays [m][kb] = {
  type mat [m][kb] = q5k_panel_arrays [m][kb]
  module K = k_blocks C
  def pair [m][kb] (a: mat [m][kb]) (t: i64) (b: i64) (j: i64) (r: i64) : (f32, f32) =
    let (s, o) = K.scales (#[unsafe] a.d[t, b, r]) (#[unsafe] a.dmin[t, b, r]) (#[unsafe] a.sc[t, b, r])
                          (#[unsafe] a.mn[t, b, r])
    let (lo, hi) = C.wide_codes 1 (#[unsafe] a.q[t, b, j, r]) (#[unsafe] a.h[t, b, plane_byte 1 j, r]) j 0
    in (s * lo + o, s * hi + o)
  def get [m][kb] (a: mat [m][kb]) (i: i64) (c: i64) : f32 =
    let block = unit kb i (c / 32)
    let (s, o) = K.scales (flatten (flatten a.d))[block] (flatten (flatten a.dmin))[block]
                          (flatten (flatten a.sc))[block] (flatten (flatten a.mn))[block]
    in K.decode s o (wide 1 a.q a.h i c)
}
module q5k_panels = q5k_panels_with native_codes

-- | Q6_K's blocks: 6-bit codes (nibbles and two planes of high bits,
-- `wide`), a half `d` a block and a signed byte scale `sc` a half block of
-- 16 values; value = d · sc · (code - 32), computed as gguf-py's
-- dequantization computes it, the same bits: `s = d · sc`, exact (an 11-bit
-- half times a 7-bit scale), times the signed code, exact too.
type q6k_panel_arrays [m][kb] = {q: [(m + P - 1) / P][kb][16][P]u8, h: [(m + P - 1) / P][kb][8][P]u8,
                                 d: [(m + P - 1) / P][kb][P]u16, sc: [(m + P - 1) / P][kb][2][P]u8, rows: [m]()}

module q6k_panels_with (C: codes) : format with mat [m][kb] = q6k_panel_arrays [m][kb] = {
  type mat [m][kb] = q6k_panel_arrays [m][kb]
  def decode (s: f32) (c: u8) : f32 = s * C.i8 (c - 32)  -- (the byte wraps: a signed code)
  #[inline]
  def scale (d: u16) (sc: u8) : f32 = f16_bits_to_f32 d * C.i8 sc
  def pair [m][kb] (a: mat [m][kb]) (t: i64) (b: i64) (j: i64) (r: i64) : (f32, f32) =
    let d = #[unsafe] a.d[t, b, r]
    let (lo, hi) = C.wide_codes 2 (#[unsafe] a.q[t, b, j, r]) (#[unsafe] a.h[t, b, plane_byte 2 j, r]) j 32
    in (scale d (#[unsafe] a.sc[t, b, 0, r]) * lo, scale d (#[unsafe] a.sc[t, b, 1, r]) * hi)
  def get [m][kb] (a: mat [m][kb]) (i: i64) (c: i64) : f32 =
    let (b, j) = (c / 32, c % 32)
    let s = scale (flatten (flatten a.d))[unit kb i b] (flatten (flatten (flatten a.sc)))[unit (kb * 2) i (b * 2 + j / 16)]
    in decode s (wide 2 a.q a.h i c)
}
module q6k_panels = q6k_panels_with native_codes

-- | Rows `r0 ..` (`R.n` of them) of panel `t` times `G.n` tokens: the core
-- of every product.  `x g c` is column `c` of token `g` (zero past the
-- last column).
module slice_product (F: format) (R: vec) (G: vec) = {
  -- Blocks outside and a block's 16 column pairs inside, a constant trip
  -- count that clang unrolls, the block's scales decoded once.  `x` must be
  -- plain loads (one token, or tokens packed column by column): with a
  -- bounds test per value the unrolled loops spilled registers.
  -- | Columns `32·b + j` and `32·b + 16 + j` of the slice, decoded: each
  -- column's lanes in a tabulate of their own (the order of the statements
  -- the whole-panel kernels had; pairs of lanes made the browser's
  -- one-token product 10-20 % slower).
  def columns [m][kb] (a: F.mat [m][kb]) (t: i64) (r0: i64) (b: i64) (j: i64) : (R.t f32, R.t f32) =
    (R.tabulate (\r -> (F.pair a t b j (r0 + r)).0), R.tabulate (\r -> (F.pair a t b j (r0 + r)).1))

  def run [m][kb] (a: F.mat [m][kb]) (t: i64) (r0: i64) (x: i64 -> i64 -> f32) : G.t (R.t f32) =
    let zero = G.tabulate (\_ -> R.tabulate (\_ -> 0f32))
    let fma acc w g = G.map2 (\a x -> R.map2 (\a w -> a + w * x) a w) acc g
    let step (lo, hi) b j =
      let (wl, wh) = columns a t r0 b j
      let c = 32 * b + j
      in (fma lo wl (G.tabulate (\g -> x g c)), fma hi wh (G.tabulate (\g -> x g (c + 16))))
    let (lo, hi) = loop acc = (zero, zero) for b < kb do loop acc for j < 16 do step acc b j
    in G.map2 (R.map2 (+)) lo hi
}

-- | Tokens multiplied together by the batched products.
module group = vec4
def G : i64 = 4

-- | The rows of a panel the batched products take at a time: their running
-- sums (2 a row and token, `G` tokens) must fit in the vector registers.
-- A whole panel (`lanes`, 32 rows: 8 zmm registers a token) suits AVX-512's
-- 32 registers; AVX2 has 16, where 32 rows spilled the sums to the stack and
-- 8 rows (8 ymm registers for 4 tokens) made batched decoding and prefill
-- faster there (docs/PERFORMANCE.md).  The native builds choose for their
-- CPU: the Makefile's `KERNEL_ROWS`, through src/target.fut.
module type slice = vec

-- | The batched products' kernel over slices of `R.n` rows of a panel.
module batched (F: format) (R: slice) = {
  module kernel = slice_product F R group

  -- | Tile `t` (a panel's rows) of `G.n` tokens' results, each slice's
  -- results written with constant indices through `put` (as small arrays
  -- they were the runtime's copy calls).
  #[inline]
  def tile [m][kb] 'o (a: F.mat [m][kb]) (t: i64) (x: i64 -> i64 -> f32)
                      (put: *o -> i64 -> i64 -> f32 -> *o) (out: *o) : *o =
    loop out for s < P / R.n do
      let r0 = s * R.n
      let row (out: *o) i (y: R.t f32) : *o = R.foldi (\(out: *o) r v : *o -> put out i (r0 + r) v) out y
      in group.foldi row out (kernel.run a t r0 x)
}

-- | `xs Wᵀ` with the f32 panels `a`.  The tokens go in blocks of up to 16
-- groups of `G` (at least 8 blocks when there are tokens enough, for the
-- threads), each block copied column by column into `[groups][columns][G]`
-- so that a multiply-add reads its token's value straight from memory; a
-- block's rows of the result are written in place, panel after panel, so
-- the result needs no transposition (which cost as much as the products'
-- arithmetic, docs/PERFORMANCE.md).
module f32_products (R: slice) = {
  module B = batched f32_panels R
  #[inline]
  def matmul [m][kb][b][n] (a: f32_panels.mat [m][kb]) (xs: [b][n]f32) : [b][m]f32 =
    let TB = G * i64.max 1 (i64.min 16 ((b + 8 * G - 1) / (8 * G)))
    let (blocks, groups, np) = ((b + TB - 1) / TB, TB / G, panels m)
    let rows = tabulate blocks (\blk ->
      -- (each token's value a scalar store: built as `[G]` rows, it was a
      -- call of the runtime's general copy per 4 values)
      let xp = tabulate groups (\g -> tabulate (kb * 32 * G) (\f ->
                 let (c, k) = (f / G, blk * TB + g * G + f % G)
                 in if k < b && c < n then #[unsafe] xs[k, c] else 0))
      in loop out = replicate TB (replicate m 0f32) for t < np do
           loop out for g < groups do
             -- rows `m` wide, the last panel's padding not stored, so that
             -- the blocks' rows are the result as they are (trimmed to `m`
             -- afterwards, they were copied)
             let put (out: *[TB][m]f32) i r v : *[TB][m]f32 =
               if t * P + r < m then out with [g * G + i, t * P + r] = v else out
             in B.tile a t (\i c -> #[unsafe] xp[g, c * G + i]) put out)
    in flatten rows |> take b
}

-- | The products of a format: what the models use.
module type matrix = {
  type mat [m][kb]
  -- | `W x`.
  val matvec [m][kb][n] : mat [m][kb] -> [n]f32 -> [m]f32
  -- | `xs Wᵀ`: one token by `matvec`, up to `dense_above` (src/target.fut) by
  -- groups, more from `dense`.
  val matmul [m][kb][b][n] : mat [m][kb] -> [b][n]f32 -> [b][m]f32
  -- | `xs W[l]ᵀ` for matrix `l` of a stack (a model's layers): one copy of
  -- the products' code however many call sites (the stack is passed whole,
  -- so no slice of it is copied to call the function).
  val layer_matmul [L][m][kb][b][n] : [L](mat [m][kb]) -> i64 -> [b][n]f32 -> [b][m]f32
  -- | `matmul`, likewise not inlined.
  val matmul_once [m][kb][b][n] : mat [m][kb] -> [b][n]f32 -> [b][m]f32
  -- | Row `i` decoded (`n` columns): the embedding.
  val row [m][kb] : (n: i64) -> mat [m][kb] -> i64 -> [n]f32
  -- | The whole matrix decoded into f32 panels.
  val dense [m][kb] : mat [m][kb] -> f32_panels.mat [m][kb]
}

module matrix_with (R: slice) (F: format) : matrix with mat [m][kb] = F.mat [m][kb] = {
  type mat [m][kb] = F.mat [m][kb]
  module one = slice_product F lanes lane
  module some = batched F R
  module dense_f32 = f32_products R

  #[inline]
  def matvec [m][kb][n] (a: mat [m][kb]) (x: [n]f32) : [m]f32 =
    -- x padded with zeros to whole blocks: no bounds test in the inner loop
    let xp = tabulate (kb * 32) (\c -> if c < n then #[unsafe] x[c] else 0)
    let at _ c = #[unsafe] xp[c]
    in tabulate (panels m) (\t -> one.run a t 0 at |> lanes.to_array) |> flatten |> take m

  #[inline]
  def dense [m][kb] (a: mat [m][kb]) : f32_panels.mat [m][kb] =
    -- each column pair decoded once (a code byte holds columns `c` and
    -- `c + 16`) and its lanes stored with constant indices (as arrays, each
    -- column was a call of the runtime's general copy)
    let block t b : [32][P]f32 =
      let put (j: i64) (o: *[32][P]f32) (r: i64) (v: f32) : *[32][P]f32 = o with [j, r] = v
      in loop o = replicate 32 (replicate P 0f32) for c < 16 do
           let (lo, hi) = one.columns a t 0 b c
           in lanes.foldi (put (c + 16)) (lanes.foldi (put c) o lo) hi
    in {w = tabulate (panels m) (\t -> tabulate kb (block t))
            :> [(m + P - 1) / P][kb][32][P]f32,
        rows = replicate m ()}

  #[inline]
  def matmul [m][kb][b][n] (a: mat [m][kb]) (xs: [b][n]f32) : [b][m]f32 =
    if b == 1 then [matvec a xs[0]] :> [b][m]f32
    else if b > dense_above then dense_f32.matmul (dense a) xs  -- (dense_above: src/target.fut)
    else let groups = (b + G - 1) / G
         -- the tokens packed column by column (the last repeated to fill
         -- the last group), so the kernel's loads are plain and its
         -- blocks' scales are decoded once, in nested loops (with a bounds
         -- test per value, the loops spilled registers unrolled, and a flat
         -- loop decoded each block's scales 16 times)
         let xp = tabulate groups (\g -> tabulate (kb * 32 * G) (\f ->
                    let c = f / G in if c < n then #[unsafe] xs[i64.min (g * G + f % G) (b - 1), c] else 0))
         let tile t g : [G * P]f32 =
           let put (o: *[G * P]f32) i r v : *[G * P]f32 = o with [i * P + r] = v
           in some.tile a t (\i c -> #[unsafe] xp[g, c * G + i]) put (replicate (G * P) 0)
         -- the result gathered from the tiles, each value read where its
         -- tile put it (transposing the tiles into rows cost 12-17 % of a
         -- 16-token pass, docs/PERFORMANCE.md)
         let r = tabulate (panels m) (\t -> tabulate groups (tile t))
         in tabulate b (\k -> tabulate m (\j -> #[unsafe] r[j / P, k / G, (k % G) * P + j % P]))

  #[noinline]
  def layer_matmul [L][m][kb][b][n] (ws: [L](mat [m][kb])) (l: i64) (xs: [b][n]f32) : [b][m]f32 = matmul ws[l] xs

  #[noinline]
  def matmul_once [m][kb][b][n] (a: mat [m][kb]) (xs: [b][n]f32) : [b][m]f32 = matmul a xs

  #[inline]
  def row [m][kb] (n: i64) (a: mat [m][kb]) (i: i64) : [n]f32 = tabulate n (F.get a i)
}

-- | A format's products as this build's target wants them (src/target.fut).
module matrix (F: format) = matrix_with kernel_rows F

-- | A model's weight matrices as the models use them (src/llama.fut): stacks
-- of per-layer matrices, and single ones (the embedding, the head), in one
-- format each (`uniform`), or each matrix in its own, held in a `store` of
-- one pool per format (src/llm.fut's `mixed`: a file mixing tensor types
-- keeps each tensor in its form).
module type weights = {
  -- | The matrices' data, where the stacks do not hold it themselves.
  type~ store
  -- | `L` matrices of `[m]` rows and `kb` blocks of columns.
  type layers [L][m][kb]
  -- | One matrix.
  type mat [m][kb]
  -- | `xs W[l]ᵀ` for matrix `l` of a stack.
  val layer_matmul [L][m][kb][b][n] : store -> layers [L][m][kb] -> i64 -> [b][n]f32 -> [b][m]f32
  -- | `xs Wᵀ`, one copy of its code however many call sites.
  val matmul_once [m][kb][b][n] : store -> mat [m][kb] -> [b][n]f32 -> [b][m]f32
  -- | Rows `ids` decoded (`n` columns): the embedding of tokens.
  val rows [m][kb][N] : store -> (n: i64) -> mat [m][kb] -> [N]i64 -> [N][n]f32
}

-- | The layers in the products `W`, the embedding and head in `E`; the
-- stacks hold their matrices, the store is empty.
module uniform (W: matrix) (E: matrix) : weights with store = ()
                                                  with layers [L][m][kb] = [L](W.mat [m][kb])
                                                  with mat [m][kb] = E.mat [m][kb] = {
  type store = ()
  type layers [L][m][kb] = [L](W.mat [m][kb])
  type mat [m][kb] = E.mat [m][kb]
  def layer_matmul [L][m][kb][b][n] () (ws: layers [L][m][kb]) (l: i64) (xs: [b][n]f32) : [b][m]f32 =
    W.layer_matmul ws l xs
  def matmul_once [m][kb][b][n] () (a: mat [m][kb]) (xs: [b][n]f32) : [b][m]f32 = E.matmul_once a xs
  def rows [m][kb][N] () (n: i64) (a: mat [m][kb]) (ids: [N]i64) : [N][n]f32 = map (E.row n a) ids
}

-- | Panels `at ..` of a format's pool (src/llm.fut's `mixed`): `t` panels
-- of `kb` blocks each.  Inlined, the slice is a view of the pool, not a copy.
#[inline]
def slab [n] 'a (pool: [n]a) (at: i64) (t: i64) (kb: i64) : [t][kb]a =
  unflatten (pool[at : at + t * kb] :> [t * kb]a)

module f32_matrix = matrix f32_panels
module f16_matrix = matrix f16_panels
module q8_matrix = matrix q8_panels
module q4_matrix = matrix q4_panels
module k8_matrix = matrix k8_panels
module q4k_matrix = matrix q4k_panels
module q5_matrix = matrix q5_panels
module q5k_matrix = matrix q5k_panels
module q6k_matrix = matrix q6k_panels

-- The WebAssembly build's (llaf/web.py): every format, the block formats
-- with `wasm_codes`, whole panels (narrower slices made the browser's
-- products no faster).
module f32_wasm_matrix = matrix_with lanes f32_panels
module f16_wasm_matrix = matrix_with lanes f16_panels
module q8_wasm_matrix = matrix_with lanes (q8_panels_with wasm_codes)
module q4_wasm_matrix = matrix_with lanes (q4_panels_with wasm_codes)
module k8_wasm_matrix = matrix_with lanes (k8_panels_with wasm_codes)
module q4k_wasm_matrix = matrix_with lanes (q4k_panels_with wasm_codes)
module q5_wasm_matrix = matrix_with lanes (q5_panels_with wasm_codes)
module q5k_wasm_matrix = matrix_with lanes (q5k_panels_with wasm_codes)
module q6k_wasm_matrix = matrix_with lanes (q6k_panels_with wasm_codes)

-- Building matrices from their panels (the entry points' arrays) ------------

def f32_mat [t][kb] (m: i64) (w: [t][kb][32][P]f32) : f32_matrix.mat [m][kb] =
  {w = w :> [(m + P - 1) / P][kb][32][P]f32, rows = replicate m ()}

def f16_mat [t][kb] (m: i64) (w: [t][kb][32][P]u16) : f16_matrix.mat [m][kb] =
  {w = w :> [(m + P - 1) / P][kb][32][P]u16, rows = replicate m ()}

def q8_mat [t][kb] (m: i64) (q: [t][kb][32][P]u8) (scale: [t][kb][P]u16) (offset: [t][kb][P]u16)
    : q8_matrix.mat [m][kb] =
  let t' = (m + P - 1) / P
  in {q = q :> [t'][kb][32][P]u8, scale = scale :> [t'][kb][P]u16, offset = offset :> [t'][kb][P]u16,
      rows = replicate m ()}

def q4_mat [t][kb] (m: i64) (q: [t][kb][16][P]u8) (scale: [t][kb][P]u16) (offset: [t][kb][P]u16)
    : q4_matrix.mat [m][kb] =
  let t' = (m + P - 1) / P
  in {q = q :> [t'][kb][16][P]u8, scale = scale :> [t'][kb][P]u16, offset = offset :> [t'][kb][P]u16,
      rows = replicate m ()}

def k8_mat [t][kb] (m: i64) (q: [t][kb][32][P]u8) (d: [t][kb][P]u16) (dmin: [t][kb][P]u16)
    (sc: [t][kb][2][P]u8) (mn: [t][kb][2][P]u8) : k8_matrix.mat [m][kb] =
  let t' = (m + P - 1) / P
  in {q = q :> [t'][kb][32][P]u8, d = d :> [t'][kb][P]u16, dmin = dmin :> [t'][kb][P]u16,
      sc = sc :> [t'][kb][2][P]u8, mn = mn :> [t'][kb][2][P]u8, rows = replicate m ()}

def q4k_mat [t][kb] (m: i64) (q: [t][kb][16][P]u8) (d: [t][kb][P]u16) (dmin: [t][kb][P]u16)
    (sc: [t][kb][P]u8) (mn: [t][kb][P]u8) : q4k_matrix.mat [m][kb] =
  let t' = (m + P - 1) / P
  in {q = q :> [t'][kb][16][P]u8, d = d :> [t'][kb][P]u16, dmin = dmin :> [t'][kb][P]u16,
      sc = sc :> [t'][kb][P]u8, mn = mn :> [t'][kb][P]u8, rows = replicate m ()}

def q5_mat [t][kb] (m: i64) (q: [t][kb][16][P]u8) (h: [t][kb][4][P]u8) (scale: [t][kb][P]u16)
    (offset: [t][kb][P]u16) : q5_matrix.mat [m][kb] =
  let t' = (m + P - 1) / P
  in {q = q :> [t'][kb][16][P]u8, h = h :> [t'][kb][4][P]u8, scale = scale :> [t'][kb][P]u16,
      offset = offset :> [t'][kb][P]u16, rows = replicate m ()}

def q5k_mat [t][kb] (m: i64) (q: [t][kb][16][P]u8) (h: [t][kb][4][P]u8) (d: [t][kb][P]u16) (dmin: [t][kb][P]u16)
    (sc: [t][kb][P]u8) (mn: [t][kb][P]u8) : q5k_matrix.mat [m][kb] =
  let t' = (m + P - 1) / P
  in {q = q :> [t'][kb][16][P]u8, h = h :> [t'][kb][4][P]u8, d = d :> [t'][kb][P]u16,
      dmin = dmin :> [t'][kb][P]u16, sc = sc :> [t'][kb][P]u8, mn = mn :> [t'][kb][P]u8, rows = replicate m ()}

def q6k_mat [t][kb] (m: i64) (q: [t][kb][16][P]u8) (h: [t][kb][8][P]u8) (d: [t][kb][P]u16)
    (sc: [t][kb][2][P]u8) : q6k_matrix.mat [m][kb] =
  let t' = (m + P - 1) / P
  in {q = q :> [t'][kb][16][P]u8, h = h :> [t'][kb][8][P]u8, d = d :> [t'][kb][P]u16,
      sc = sc :> [t'][kb][2][P]u8, rows = replicate m ()}

-- Tests: every product path and the rows, for each format, against NumPy
-- (tests/make_futhark_data.py packs the panels).  The rows are decoded
-- values, which must be exact: they are compared as bits, since `futhark
-- test`'s tolerance for f32 grows with the largest value. --------------------

module products (M: matrix) = {
  def all [m][kb][b][n] (a: M.mat [m][kb]) (xs: [b][n]f32) =
    (M.matvec a xs[0], M.matmul a xs, M.matmul a (take 3 xs), M.matmul a (take 1 xs),
     tabulate m (M.row n a >-> map f32.to_bits))
}

module products_f32 = products f32_matrix
module products_f16 = products f16_matrix
module products_q8 = products q8_matrix
module products_q4 = products q4_matrix
module products_k8 = products k8_matrix
module products_q4k = products q4k_matrix
module products_q5 = products q5_matrix
module products_q5k = products q5k_matrix
module products_q6k = products q6k_matrix
module products_q8_wasm = products q8_wasm_matrix
module products_q4_wasm = products q4_wasm_matrix
module products_k8_wasm = products k8_wasm_matrix
-- the batched products over 8-row slices (what AVX2's builds use,
-- src/target.fut); f16, q8, q5, q5k and q6k differ from f32, q4 and q4k
-- only in `pair`, which every path uses
module products_f32_slices = products (matrix_with vec8 f32_panels)
module products_q4_slices = products (matrix_with vec8 q4_panels)
module products_k8_slices = products (matrix_with vec8 k8_panels)
module products_q4k_slices = products (matrix_with vec8 q4k_panels)

-- ==
-- entry: test_f32
-- input @ ../tests/data/f32_panels.in
-- output @ ../tests/data/f32_panels.out
entry test_f32 [t][kb][b][n] (m: i64) (w: [t][kb][32][P]f32) (xs: [b][n]f32) =
  let a = f32_mat m w
  in products_f32.all a xs

-- ==
-- entry: test_f16
-- input @ ../tests/data/f16_panels.in
-- output @ ../tests/data/f16_panels.out
entry test_f16 [t][kb][b][n] (m: i64) (w: [t][kb][32][P]u16) (xs: [b][n]f32) =
  let a = f16_mat m w
  in products_f16.all a xs

-- ==
-- entry: test_q8
-- input @ ../tests/data/q8_panels.in
-- output @ ../tests/data/q8_panels.out
entry test_q8 [t][kb][b][n] (m: i64) (q: [t][kb][32][P]u8) (s: [t][kb][P]u16) (o: [t][kb][P]u16)
    (xs: [b][n]f32) =
  let a = q8_mat m q s o
  in products_q8.all a xs

-- ==
-- entry: test_q4
-- input @ ../tests/data/q4_panels.in
-- output @ ../tests/data/q4_panels.out
entry test_q4 [t][kb][b][n] (m: i64) (q: [t][kb][16][P]u8) (s: [t][kb][P]u16) (o: [t][kb][P]u16)
    (xs: [b][n]f32) =
  let a = q4_mat m q s o
  in products_q4.all a xs

-- ==
-- entry: test_k8
-- input @ ../tests/data/k8_panels.in
-- output @ ../tests/data/k8_panels.out
entry test_k8 [t][kb][b][n] (m: i64) (q: [t][kb][32][P]u8) (d: [t][kb][P]u16) (dmin: [t][kb][P]u16)
    (sc: [t][kb][2][P]u8) (mn: [t][kb][2][P]u8) (xs: [b][n]f32) =
  let a = k8_mat m q d dmin sc mn
  in products_k8.all a xs

-- ==
-- entry: test_q4k test_q4k_slices
-- input @ ../tests/data/q4k_panels.in
-- output @ ../tests/data/q4k_panels.out
entry test_q4k [t][kb][b][n] (m: i64) (q: [t][kb][16][P]u8) (d: [t][kb][P]u16) (dmin: [t][kb][P]u16)
    (sc: [t][kb][P]u8) (mn: [t][kb][P]u8) (xs: [b][n]f32) =
  products_q4k.all (q4k_mat m q d dmin sc mn) xs

-- The batched products over 8-row slices (what AVX2's builds use).
entry test_q4k_slices [t][kb][b][n] (m: i64) (q: [t][kb][16][P]u8) (d: [t][kb][P]u16) (dmin: [t][kb][P]u16)
    (sc: [t][kb][P]u8) (mn: [t][kb][P]u8) (xs: [b][n]f32) =
  products_q4k_slices.all (q4k_mat m q d dmin sc mn) xs

-- ==
-- entry: test_q5
-- input @ ../tests/data/q5_panels.in
-- output @ ../tests/data/q5_panels.out
entry test_q5 [t][kb][b][n] (m: i64) (q: [t][kb][16][P]u8) (h: [t][kb][4][P]u8) (s: [t][kb][P]u16)
    (o: [t][kb][P]u16) (xs: [b][n]f32) =
  products_q5.all (q5_mat m q h s o) xs

-- ==
-- entry: test_q5k
-- input @ ../tests/data/q5k_panels.in
-- output @ ../tests/data/q5k_panels.out
entry test_q5k [t][kb][b][n] (m: i64) (q: [t][kb][16][P]u8) (h: [t][kb][4][P]u8) (d: [t][kb][P]u16)
    (dmin: [t][kb][P]u16) (sc: [t][kb][P]u8) (mn: [t][kb][P]u8) (xs: [b][n]f32) =
  products_q5k.all (q5k_mat m q h d dmin sc mn) xs

-- ==
-- entry: test_q6k
-- input @ ../tests/data/q6k_panels.in
-- output @ ../tests/data/q6k_panels.out
entry test_q6k [t][kb][b][n] (m: i64) (q: [t][kb][16][P]u8) (h: [t][kb][8][P]u8) (d: [t][kb][P]u16)
    (sc: [t][kb][2][P]u8) (xs: [b][n]f32) =
  products_q6k.all (q6k_mat m q h d sc) xs

-- The WebAssembly build's codes: the same data, the same results as test_q8's.
-- ==
-- entry: test_q8_wasm
-- input @ ../tests/data/q8_panels.in
-- output @ ../tests/data/q8_panels.out
entry test_q8_wasm [t][kb][b][n] (m: i64) (q: [t][kb][32][P]u8) (s: [t][kb][P]u16) (o: [t][kb][P]u16)
    (xs: [b][n]f32) =
  products_q8_wasm.all (q8_mat m q s o) xs

-- The WebAssembly build's codes: the same data, the same results as test_q4's.
-- ==
-- entry: test_q4_wasm
-- input @ ../tests/data/q4_panels.in
-- output @ ../tests/data/q4_panels.out
entry test_q4_wasm [t][kb][b][n] (m: i64) (q: [t][kb][16][P]u8) (s: [t][kb][P]u16) (o: [t][kb][P]u16)
    (xs: [b][n]f32) =
  products_q4_wasm.all (q4_mat m q s o) xs

-- The WebAssembly build's codes: the same data, the same results as test_k8's.
-- ==
-- entry: test_k8_wasm
-- input @ ../tests/data/k8_panels.in
-- output @ ../tests/data/k8_panels.out
entry test_k8_wasm [t][kb][b][n] (m: i64) (q: [t][kb][32][P]u8) (d: [t][kb][P]u16) (dmin: [t][kb][P]u16)
    (sc: [t][kb][2][P]u8) (mn: [t][kb][2][P]u8)
    (xs: [b][n]f32) =
  products_k8_wasm.all (k8_mat m q d dmin sc mn) xs

-- The batched products over 8-row slices: the same data, the same results as test_f32's.
-- ==
-- entry: test_f32_slices
-- input @ ../tests/data/f32_panels.in
-- output @ ../tests/data/f32_panels.out
entry test_f32_slices [t][kb][b][n] (m: i64) (w: [t][kb][32][P]f32) (xs: [b][n]f32) =
  products_f32_slices.all (f32_mat m w) xs

-- The batched products over 8-row slices: the same data, the same results as test_q4's.
-- ==
-- entry: test_q4_slices
-- input @ ../tests/data/q4_panels.in
-- output @ ../tests/data/q4_panels.out
entry test_q4_slices [t][kb][b][n] (m: i64) (q: [t][kb][16][P]u8) (s: [t][kb][P]u16) (o: [t][kb][P]u16)
    (xs: [b][n]f32) =
  products_q4_slices.all (q4_mat m q s o) xs

-- The batched products over 8-row slices: the same data, the same results as test_k8's.
-- ==
-- entry: test_k8_slices
-- input @ ../tests/data/k8_panels.in
-- output @ ../tests/data/k8_panels.out
entry test_k8_slices [t][kb][b][n] (m: i64) (q: [t][kb][32][P]u8) (d: [t][kb][P]u16) (dmin: [t][kb][P]u16)
    (sc: [t][kb][2][P]u8) (mn: [t][kb][2][P]u8) (xs: [b][n]f32) =
  products_k8_slices.all (k8_mat m q d dmin sc mn) xs

-- ==
-- entry: test_f16_bits
-- input @ ../tests/data/f16.in
-- output @ ../tests/data/f16.out
entry test_f16_bits [n] (bits: [n]u16) : [n]u32 = map (f16_bits_to_f32 >-> f32.to_bits) bits
