-- | Weight matrices in the formats llaf keeps in memory.
--
-- A model's projections are `[m][n]` matrices used only through a
-- matrix–vector product and (for the embedding) a row lookup, so a format is
-- a module of the `matrix` type: its storage and those two operations.  Each
-- row is stored in `k` units: `n` values for the dense formats, `n / 32`
-- blocks of 32 values for the block formats.  Every format decodes to
-- exactly the f32 value the file means (the same numbers as
-- llaf/gguf_file.py's dequantization): decoding is fused into the product,
-- so no f32 copy of a quantized matrix is ever made.
--
--   f32   4 bytes a value     transformers, F32 and BF16 files, GPT-2
--   f16   2 bytes a value     F16 files: IEEE half bits, widened exactly
--   q8    1.25 bytes a value  Q8_0, Q4_0 and Q4_1 blocks: a byte code per
--                             value, value = scale · code + offset
--   q4    0.75 bytes a value  Q4_0 and Q4_1 blocks: two 4-bit codes per
--                             byte, the low nibble of byte j is value j of
--                             the block, the high nibble value j + 16 (the
--                             GGUF layout)
--
-- The block products compute `(scale · code + offset) · x` per value: the
-- decoded weight is exact (one rounding of an exactly representable
-- result), so a quantized model computes what its f32 expansion computes,
-- up to the order of the sums.  Measured (49152×576, C backend, clang):
-- f32 5.1 ms, f16 4.5 ms, q8 3.3 ms, q4 3.6 ms; factoring the offset out of
-- the block sum made q4 slower (14 ms: clang unrolls and then fails to
-- vectorize the 16-value loop) as well as inexact.

import "nn"

module type matrix = {
  -- | An `[m][n]` matrix stored as `m` rows of `k` units.
  type mat [m][k]
  -- | `W x` for `x` of the matrix's `n` columns.
  val matvec [m][k][n] : mat [m][k] -> [n]f32 -> [m]f32
  -- | Row `i` decoded: `n` values.
  val row [m][k] : (n: i64) -> mat [m][k] -> i64 -> [n]f32
  -- | The whole matrix decoded: for products with many tokens at once,
  -- where decoding each weight once beats decoding it once per token.
  val dense [m][k] : (n: i64) -> mat [m][k] -> [m][n]f32
}

-- | Values of an IEEE 754 half-precision bit pattern, exactly, with
-- integer operations only (Futhark's C backends emulate `f16` slowly).
def f16_bits_to_f32 (h: u16) : f32 =
  let mag = u32.u16 (h & 0x7fff)
  let sign = u32.u16 (h & 0x8000) << 16
  let bits = if mag >= 0x7c00 then (mag << 13) | 0x7f800000  -- infinities and NaNs
             else (mag << 13) + (112 << 23)                   -- normal numbers: rebias the exponent
  let v = if mag < 0x400 then f32.u32 mag * (1 / 16777216)    -- subnormals: code · 2^-24
          else f32.from_bits bits
  in f32.from_bits (f32.to_bits v | sign)

module f32_rows = {
  type mat [m][k] = [m][k]f32
  def matvec [m][k][n] (w: mat [m][k]) (x: [n]f32) : [m]f32 = matvec w (x :> [k]f32)
  def row [m][k] (n: i64) (w: mat [m][k]) (i: i64) : [n]f32 = w[i] :> [n]f32
  def dense [m][k] (n: i64) (w: mat [m][k]) : [m][n]f32 = w :> [m][n]f32
}

module f16_rows = {
  type mat [m][k] = [m][k]u16
  def matvec [m][k][n] (w: mat [m][k]) (x: [n]f32) : [m]f32 =
    let x = x :> [k]f32
    in map (\r -> f32.sum (map2 (\h v -> f16_bits_to_f32 h * v) r x)) w
  def row [m][k] (n: i64) (w: mat [m][k]) (i: i64) : [n]f32 = map f16_bits_to_f32 w[i] :> [n]f32
  def dense [m][k] (n: i64) (w: mat [m][k]) : [m][n]f32 = tabulate m (row n w)
}

-- | Blocks of 32 values sharing a scale and an offset.
module q8_blocks = {
  type mat [m][k] = {q: [m][k][32]u8, scale: [m][k]f32, offset: [m][k]f32}
  def decode (s: f32) (o: f32) (c: u8) : f32 = s * f32.u8 c + o
  def matvec [m][k][n] (w: mat [m][k]) (x: [n]f32) : [m]f32 =
    let xb = unflatten (x :> [k * 32]f32)
    in map3 (\qr sr or ->
               f32.sum (map4 (\qb s o xv -> f32.sum (map2 (\c v -> decode s o c * v) qb xv)) qr sr or xb))
            w.q w.scale w.offset
  def row [m][k] (n: i64) (w: mat [m][k]) (i: i64) : [n]f32 =
    map3 (\qb s o -> map (decode s o) qb) w.q[i] w.scale[i] w.offset[i] |> flatten :> [n]f32
  def dense [m][k] (n: i64) (w: mat [m][k]) : [m][n]f32 = tabulate m (row n w)
}

-- | Blocks of 32 4-bit codes packed two to a byte, with a scale and an offset.
module q4_blocks = {
  type mat [m][k] = {q: [m][k][16]u8, scale: [m][k]f32, offset: [m][k]f32}
  def decode (s: f32) (o: f32) (c: u8) : f32 = s * f32.u8 c + o
  def matvec [m][k][n] (w: mat [m][k]) (x: [n]f32) : [m]f32 =
    let xb = unflatten (x :> [k * 32]f32)
    let block qb s o (xv: [32]f32) =
      f32.sum (map3 (\c lo hi -> decode s o (c & 15) * lo + decode s o (c >> 4) * hi)
                    qb (xv[0:16] :> [16]f32) (xv[16:32] :> [16]f32))
    in map3 (\qr sr or -> f32.sum (map4 block qr sr or xb)) w.q w.scale w.offset
  def row [m][k] (n: i64) (w: mat [m][k]) (i: i64) : [n]f32 =
    map3 (\qb s o -> map (decode s o) (map (& 15) qb ++ map (>> 4) qb))
         w.q[i] w.scale[i] w.offset[i] |> flatten :> [n]f32
  def dense [m][k] (n: i64) (w: mat [m][k]) : [m][n]f32 = tabulate m (row n w)
}

-- ==
-- entry: test_f16
-- input @ ../tests/data/f16.in
-- output @ ../tests/data/f16.out
entry test_f16 [n] (bits: [n]u16) : [n]f32 = map f16_bits_to_f32 bits

-- ==
-- entry: test_f16_matvec
-- input @ ../tests/data/f16_matvec.in
-- output @ ../tests/data/f16_matvec.out
entry test_f16_matvec [m][n] (w: [m][n]u16) (x: [n]f32) : ([m]f32, [m][n]f32) =
  (f16_rows.matvec w x, tabulate m (f16_rows.row n w))

-- ==
-- entry: test_q8_matvec
-- input @ ../tests/data/q8_matvec.in
-- output @ ../tests/data/q8_matvec.out
entry test_q8_matvec [m][k][n] (q: [m][k][32]u8) (scale: [m][k]f32) (offset: [m][k]f32) (x: [n]f32)
    : ([m]f32, [m][n]f32) =
  let w = {q, scale, offset}
  in (q8_blocks.matvec w x, tabulate m (q8_blocks.row n w))

-- ==
-- entry: test_q4_matvec
-- input @ ../tests/data/q4_matvec.in
-- output @ ../tests/data/q4_matvec.out
entry test_q4_matvec [m][k][n] (q: [m][k][16]u8) (scale: [m][k]f32) (offset: [m][k]f32) (x: [n]f32)
    : ([m]f32, [m][n]f32) =
  let w = {q, scale, offset}
  in (q4_blocks.matvec w x, tabulate m (q4_blocks.row n w))
