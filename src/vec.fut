-- | Register vectors: a fixed number of lanes held in scalar variables.
--
-- A Futhark array inside a sequential loop lives in memory, which the C
-- compiler cannot keep in registers; a tuple of scalars it can.  `vec`
-- values are flat tuples of 4 to 32 scalars, each module written out (a
-- functor doubling a smaller one made thousands of defunctionalised
-- functions and a far slower compile), so a loop can carry many running
-- sums whose lanes clang's straight-line (SLP) vectorizer packs into SIMD
-- registers.  The products in
-- src/matrix.fut and the attention in src/attention.fut are written with
-- them; docs/PERFORMANCE.md has the measurements that led here.

module type vec = {
  -- | A vector of `n` lanes of type `a`.
  type t 'a
  val n : i64
  val tabulate 'a : (i64 -> a) -> t a
  val map 'a 'b : (a -> b) -> t a -> t b
  val map2 'a 'b 'c : (a -> b -> c) -> t a -> t b -> t c
  -- | The lanes summed pairwise (a tree of additions).
  val sum : t f32 -> f32
  val to_array 'a : t a -> [n]a
  -- | `f` applied to an accumulator, each lane's index and the lane, in
  -- order: in-place writes of the lanes with constant indices.
  val foldi 'a 'b : (*b -> i64 -> a -> *b) -> *b -> t a -> *b
}

module lane = {
  type t 'a = a
  def n = 1i64
  def tabulate 'a (f: i64 -> a) : a = f 0
  def map 'a 'b (f: a -> b) (x: a) : b = f x
  def map2 'a 'b 'c (f: a -> b -> c) (x: a) (y: b) : c = f x y
  def sum (x: f32) : f32 = x
  def to_array 'a (x: a) : [n]a = [x] :> [n]a
  def foldi 'a 'b (f: *b -> i64 -> a -> *b) (z: *b) (x: a) : *b = f z 0 x
}

module vec4 : vec = {
  type t 'a = (a, a, a, a)
  def n = 4i64
  def tabulate 'a (f: i64 -> a) : t a = (f 0, f 1, f 2, f 3)
  def map 'a 'b (f: a -> b) ((x0, x1, x2, x3): t a) : t b = (f x0, f x1, f x2, f x3)
  def map2 'a 'b 'c (f: a -> b -> c) ((x0, x1, x2, x3): t a) ((y0, y1, y2, y3): t b) : t c =
    (f x0 y0, f x1 y1, f x2 y2, f x3 y3)
  def sum ((x0, x1, x2, x3): t f32) : f32 = ((x0 + x1) + (x2 + x3))
  def to_array 'a ((x0, x1, x2, x3): t a) : [n]a = [x0, x1, x2, x3] :> [n]a
  def foldi 'a 'b (f: *b -> i64 -> a -> *b) (z: *b) ((x0, x1, x2, x3): t a) : *b =
    f (f (f (f z 0 x0) 1 x1) 2 x2) 3 x3
}
module vec8 : vec = {
  type t 'a = (a, a, a, a, a, a, a, a)
  def n = 8i64
  def tabulate 'a (f: i64 -> a) : t a = (f 0, f 1, f 2, f 3, f 4, f 5, f 6, f 7)
  def map 'a 'b (f: a -> b) ((x0, x1, x2, x3, x4, x5, x6, x7): t a) : t b = (f x0, f x1, f x2, f x3, f x4, f x5, f x6, f x7)
  def map2 'a 'b 'c (f: a -> b -> c) ((x0, x1, x2, x3, x4, x5, x6, x7): t a) ((y0, y1, y2, y3, y4, y5, y6, y7): t b) : t c =
    (f x0 y0, f x1 y1, f x2 y2, f x3 y3, f x4 y4, f x5 y5, f x6 y6, f x7 y7)
  def sum ((x0, x1, x2, x3, x4, x5, x6, x7): t f32) : f32 = (((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7)))
  def to_array 'a ((x0, x1, x2, x3, x4, x5, x6, x7): t a) : [n]a = [x0, x1, x2, x3, x4, x5, x6, x7] :> [n]a
  def foldi 'a 'b (f: *b -> i64 -> a -> *b) (z: *b) ((x0, x1, x2, x3, x4, x5, x6, x7): t a) : *b =
    f (f (f (f (f (f (f (f z 0 x0) 1 x1) 2 x2) 3 x3) 4 x4) 5 x5) 6 x6) 7 x7
}
module vec16 : vec = {
  type t 'a = (a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a)
  def n = 16i64
  def tabulate 'a (f: i64 -> a) : t a = (f 0, f 1, f 2, f 3, f 4, f 5, f 6, f 7, f 8, f 9, f 10, f 11, f 12, f 13, f 14, f 15)
  def map 'a 'b (f: a -> b) ((x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15): t a) : t b = (f x0, f x1, f x2, f x3, f x4, f x5, f x6, f x7, f x8, f x9, f x10, f x11, f x12, f x13, f x14, f x15)
  def map2 'a 'b 'c (f: a -> b -> c) ((x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15): t a) ((y0, y1, y2, y3, y4, y5, y6, y7, y8, y9, y10, y11, y12, y13, y14, y15): t b) : t c =
    (f x0 y0, f x1 y1, f x2 y2, f x3 y3, f x4 y4, f x5 y5, f x6 y6, f x7 y7, f x8 y8, f x9 y9, f x10 y10, f x11 y11, f x12 y12, f x13 y13, f x14 y14, f x15 y15)
  def sum ((x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15): t f32) : f32 = ((((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7))) + (((x8 + x9) + (x10 + x11)) + ((x12 + x13) + (x14 + x15))))
  def to_array 'a ((x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15): t a) : [n]a = [x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15] :> [n]a
  def foldi 'a 'b (f: *b -> i64 -> a -> *b) (z: *b) ((x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15): t a) : *b =
    f (f (f (f (f (f (f (f (f (f (f (f (f (f (f (f z 0 x0) 1 x1) 2 x2) 3 x3) 4 x4) 5 x5) 6 x6) 7 x7) 8 x8) 9 x9) 10 x10) 11 x11) 12 x12) 13 x13) 14 x14) 15 x15
}
module vec32 : vec = {
  type t 'a = (a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a)
  def n = 32i64
  def tabulate 'a (f: i64 -> a) : t a = (f 0, f 1, f 2, f 3, f 4, f 5, f 6, f 7, f 8, f 9, f 10, f 11, f 12, f 13, f 14, f 15, f 16, f 17, f 18, f 19, f 20, f 21, f 22, f 23, f 24, f 25, f 26, f 27, f 28, f 29, f 30, f 31)
  def map 'a 'b (f: a -> b) ((x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15, x16, x17, x18, x19, x20, x21, x22, x23, x24, x25, x26, x27, x28, x29, x30, x31): t a) : t b = (f x0, f x1, f x2, f x3, f x4, f x5, f x6, f x7, f x8, f x9, f x10, f x11, f x12, f x13, f x14, f x15, f x16, f x17, f x18, f x19, f x20, f x21, f x22, f x23, f x24, f x25, f x26, f x27, f x28, f x29, f x30, f x31)
  def map2 'a 'b 'c (f: a -> b -> c) ((x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15, x16, x17, x18, x19, x20, x21, x22, x23, x24, x25, x26, x27, x28, x29, x30, x31): t a) ((y0, y1, y2, y3, y4, y5, y6, y7, y8, y9, y10, y11, y12, y13, y14, y15, y16, y17, y18, y19, y20, y21, y22, y23, y24, y25, y26, y27, y28, y29, y30, y31): t b) : t c =
    (f x0 y0, f x1 y1, f x2 y2, f x3 y3, f x4 y4, f x5 y5, f x6 y6, f x7 y7, f x8 y8, f x9 y9, f x10 y10, f x11 y11, f x12 y12, f x13 y13, f x14 y14, f x15 y15, f x16 y16, f x17 y17, f x18 y18, f x19 y19, f x20 y20, f x21 y21, f x22 y22, f x23 y23, f x24 y24, f x25 y25, f x26 y26, f x27 y27, f x28 y28, f x29 y29, f x30 y30, f x31 y31)
  def sum ((x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15, x16, x17, x18, x19, x20, x21, x22, x23, x24, x25, x26, x27, x28, x29, x30, x31): t f32) : f32 = (((((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7))) + (((x8 + x9) + (x10 + x11)) + ((x12 + x13) + (x14 + x15)))) + ((((x16 + x17) + (x18 + x19)) + ((x20 + x21) + (x22 + x23))) + (((x24 + x25) + (x26 + x27)) + ((x28 + x29) + (x30 + x31)))))
  def to_array 'a ((x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15, x16, x17, x18, x19, x20, x21, x22, x23, x24, x25, x26, x27, x28, x29, x30, x31): t a) : [n]a = [x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15, x16, x17, x18, x19, x20, x21, x22, x23, x24, x25, x26, x27, x28, x29, x30, x31] :> [n]a
  def foldi 'a 'b (f: *b -> i64 -> a -> *b) (z: *b) ((x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15, x16, x17, x18, x19, x20, x21, x22, x23, x24, x25, x26, x27, x28, x29, x30, x31): t a) : *b =
    f (f (f (f (f (f (f (f (f (f (f (f (f (f (f (f (f (f (f (f (f (f (f (f (f (f (f (f (f (f (f (f z 0 x0) 1 x1) 2 x2) 3 x3) 4 x4) 5 x5) 6 x6) 7 x7) 8 x8) 9 x9) 10 x10) 11 x11) 12 x12) 13 x13) 14 x14) 15 x15) 16 x16) 17 x17) 18 x18) 19 x19) 20 x20) 21 x21) 22 x22) 23 x23) 24 x24) 25 x25) 26 x26) 27 x27) 28 x28) 29 x29) 30 x30) 31 x31
}
