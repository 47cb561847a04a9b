/* The host's f32 multiply-add ceiling: independent fused multiply-adds of
 * the widest vectors the compiler targets, on 1 and 2 threads.  A batched
 * pass can be no faster than its products' flops at this rate
 * (docs/PERFORMANCE.md, "Serving under concurrent clients").
 *
 *     clang-15 -O2 -march=native -pthread benchmarks/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#if defined(__AVX512F__)
typedef __m512 vec;
#define LANES 16
#define FMA _mm512_fmadd_ps
#define SET _mm512_set1_ps
#else
typedef __m256 vec;
#define LANES 8
#define FMA _mm256_fmadd_ps
#define SET _mm256_set1_ps
#endif

enum { CHAINS = 12, ROUNDS = 100000000 };  /* 12 chains cover 2 pipes x 4 cycles of latency */

static void *run(void *out) {
  vec acc[CHAINS], x = SET(1.0000001f), y = SET(-1e-7f);
  for (int i = 0; i < CHAINS; i++) acc[i] = SET((float)i);
  for (long k = 0; k < ROUNDS; k++)
    for (int i = 0; i < CHAINS; i++) acc[i] = FMA(acc[i], x, y);
  float sum = 0, lanes[LANES];
  for (int i = 0; i < CHAINS; i++) {
    memcpy(lanes, &acc[i], sizeof lanes);
    for (int j = 0; j < LANES; j++) sum += lanes[j];
  }
  *(float *)out = sum;  /* kept, so the loop is not thrown away */
  return NULL;
}

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(void) {
  for (int threads = 1; threads <= 2; threads++) {
    pthread_t id[2];
    float out[2];
    double start = seconds();
    for (int t = 0; t < threads; t++) pthread_create(&id[t], NULL, run, &out[t]);
    for (int t = 0; t < threads; t++) pthread_join(id[t], NULL);
    double flops = 2.0 * LANES * CHAINS * (double)ROUNDS * threads;
    printf("%d thread%s: %.1f GFLOP/s (%d-lane vectors; %g)\n", threads, threads > 1 ? "s" : "",
           flops / (seconds() - start) / 1e9, LANES, out[0]);
  }
  return 0;
}
