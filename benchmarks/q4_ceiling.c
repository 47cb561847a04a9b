/* One q4 matrix-vector product loop, as plain C for the compilers'
 * vectorizers, built natively and for WebAssembly: how fast the same loop
 * can run in each, one thread (docs/PERFORMANCE.md, "In the browser").
 *
 * The layout is the engine's (src/matrix.fut): panels of 32 rows; in a block
 * of 32 columns, a row's code byte j holds column j in its low nibble and
 * column j + 16 in its high one; each row's value is scale * code + offset
 * (here f32 scales, which the engine keeps as half bits) and every row has
 * two running sums, columns j and j + 16.  60 matrices of 1536 x 576, 26 MB
 * of codes, beyond the caches as a model's layers are.
 *
 *     clang-15 -O3 -march=native -ffp-contract=fast benchmarks/q4_ceiling.c -o /tmp/q4 && /tmp/q4
 *     NODE_PATH=/usr/share/nodejs emcc -O3 -msimd128 -ffp-contract=fast -sALLOW_MEMORY_GROWTH=1 \
 *       -sSINGLE_FILE=1 benchmarks/q4_ceiling.c -o /tmp/q4.js && node --no-liftoff /tmp/q4.js
 *
 * (--no-liftoff: the products run inside one call of main, and V8 replaces
 * a function's baseline code with its optimized code only at a next call.)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { P = 32, ROWS = 1536, COLUMNS = 576, MATRICES = 60, ROUNDS = 20 };

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void matvec(int panels, int kb, const uint8_t *codes, const float *scale, const float *offset, const float *x,
                   float *y) {
  for (int t = 0; t < panels; t++) {
    float lo[P] = {0}, hi[P] = {0};
    for (int b = 0; b < kb; b++) {
      const uint8_t *c = codes + ((size_t)t * kb + b) * 16 * P;
      const float *s = scale + ((size_t)t * kb + b) * P, *o = offset + ((size_t)t * kb + b) * P;
      for (int j = 0; j < 16; j++) {
        float xl = x[32 * b + j], xh = x[32 * b + 16 + j];
        for (int r = 0; r < P; r++) {
          uint8_t code = c[j * P + r];
          lo[r] += (s[r] * (float)(code & 15) + o[r]) * xl;
          hi[r] += (s[r] * (float)(code >> 4) + o[r]) * xh;
        }
      }
    }
    for (int r = 0; r < P; r++) y[t * P + r] = lo[r] + hi[r];
  }
}

int main(void) {
  const int panels = ROWS / P, kb = COLUMNS / 32;
  const size_t bytes = (size_t)panels * kb * 16 * P, blocks = (size_t)panels * kb * P;
  uint8_t *codes = malloc(bytes * MATRICES);
  float *scale = malloc(sizeof(float) * blocks * MATRICES), *offset = malloc(sizeof(float) * blocks * MATRICES);
  float *x = malloc(sizeof(float) * COLUMNS), *y = malloc(sizeof(float) * ROWS);
  for (size_t i = 0; i < bytes * MATRICES; i++) codes[i] = (uint8_t)(i * 2654435761u >> 13);
  for (size_t i = 0; i < blocks * MATRICES; i++) scale[i] = 0.01f, offset[i] = -0.08f;
  for (int i = 0; i < COLUMNS; i++) x[i] = (float)(i % 7) - 3;
  double best = 1e9;
  float kept = 0;  /* (read, so that the products are not thrown away) */
  for (int round = 0; round < ROUNDS; round++) {
    double start = seconds();
    for (int k = 0; k < MATRICES; k++) {
      matvec(panels, kb, codes + bytes * k, scale + blocks * k, offset + blocks * k, x, y);
      kept += y[k];
    }
    double took = seconds() - start;
    best = took < best ? took : best;
  }
  double weights = (double)ROWS * COLUMNS * MATRICES;
  printf("q4 products, one thread: %.2f G weights/s (%.1f ms for %.0f M weights; %g)\n", weights / best / 1e9,
         best * 1e3, weights / 1e6, kept);
  return 0;
}
