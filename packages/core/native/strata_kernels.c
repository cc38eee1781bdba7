/*
 * Strata's WebAssembly SIMD kernels for the tfjs wasm backend.
 *
 * Built with clang >= 16 (wasm32, SIMD128, no libc) into `strata_kernels.wasm` and, with relaxed SIMD (fused
 * multiply-add), `strata_kernels_relaxed.wasm`; see `build.mjs` next to this file.
 * The module IMPORTS the linear memory of tfjs-backend-wasm, so every pointer below is a byte offset into
 * tfjs's own heap: kernels read their inputs and write their outputs in place, with no copies. For that to be
 * safe the module has no data segments and its small shadow stack lives in a block that the loader
 * allocates with tfjs's `malloc` (it sets `__stack_pointer` before the first call). Scratch space
 * (`ws`) is also allocated by the loader.
 *
 * Everything is float32 and row-major. The math follows tfjs's reference kernels (see the tests in
 * packages/core/test/kernels-*.test.ts, which compare every kernel with tfjs's cpu backend, forward and
 * gradient).
 */
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))
typedef v128_t vf;
typedef unsigned int u32;

#define SPLAT(x) wasm_f32x4_splat(x)
#define ADD wasm_f32x4_add
#define SUB wasm_f32x4_sub
#define MUL wasm_f32x4_mul
#define DIV wasm_f32x4_div
#define LD(p) wasm_v128_load(p)
#define ST(p, x) wasm_v128_store((p), (x))

static inline float hsum(vf x) {
  return (wasm_f32x4_extract_lane(x, 0) + wasm_f32x4_extract_lane(x, 1)) +
         (wasm_f32x4_extract_lane(x, 2) + wasm_f32x4_extract_lane(x, 3));
}
static inline float hmax(vf x) {
  float a = wasm_f32x4_extract_lane(x, 0), b = wasm_f32x4_extract_lane(x, 1);
  float c = wasm_f32x4_extract_lane(x, 2), d = wasm_f32x4_extract_lane(x, 3);
  a = a > b ? a : b;
  c = c > d ? c : d;
  return a > c ? a : c;
}

/* ------------------------------------------------------------------------------------------------
 * Math: exp (Cephes expf, ~1 ulp), log (Cephes logf), tanh (Eigen's rational approximation, a few ulp).
 * --------------------------------------------------------------------------------------------- */
static inline vf v_exp(vf x) {
  /* below ln(FLT_MIN) the true value is under the smallest normal float: return 0 there, not the clamp's
   * 1.2e-38. That clamp value, multiplied on (softmax 1/Σ, P·dP, P·V), made subnormals, which x86 computes
   * through microcode: a sharply peaked attention (high learning rates) ran its kernels 4-10x slower. */
  v128_t under = wasm_f32x4_lt(x, SPLAT(-87.33654f)); /* false for NaN, which stays NaN */
  x = wasm_f32x4_min(wasm_f32x4_max(x, SPLAT(-87.33654f)), SPLAT(88.3762626647949f));
  vf fx = wasm_f32x4_nearest(MUL(x, SPLAT(1.44269504088896341f)));
  x = SUB(x, MUL(fx, SPLAT(0.693359375f)));
  x = SUB(x, MUL(fx, SPLAT(-2.12194440e-4f)));
  vf z = MUL(x, x);
  vf y = SPLAT(1.9875691500E-4f);
  y = ADD(MUL(y, x), SPLAT(1.3981999507E-3f));
  y = ADD(MUL(y, x), SPLAT(8.3334519073E-3f));
  y = ADD(MUL(y, x), SPLAT(4.1665795894E-2f));
  y = ADD(MUL(y, x), SPLAT(1.6666665459E-1f));
  y = ADD(MUL(y, x), SPLAT(5.0000001201E-1f));
  y = ADD(ADD(MUL(y, z), x), SPLAT(1.0f));
  v128_t n = wasm_i32x4_trunc_sat_f32x4(fx);
  n = wasm_i32x4_shl(wasm_i32x4_add(n, wasm_i32x4_splat(127)), 23);
  return wasm_v128_andnot(MUL(y, n), under);
}
static inline float f_exp(float x) { return wasm_f32x4_extract_lane(v_exp(SPLAT(x)), 0); }

static float f_log(float x) {
  union { float f; u32 u; } b;
  if (!(x > 0.f)) return x == 0.f ? -__builtin_inff() : __builtin_nanf(""); /* NaN and negatives: NaN */
  if (x == __builtin_inff()) return x;
  b.f = x;
  int e = (int)((b.u >> 23) & 0xff) - 127;
  b.u = (b.u & 0x7fffff) | 0x3f800000;
  float m = b.f;
  if (m > 1.41421356237f) {
    m *= 0.5f;
    e += 1;
  }
  float f = m - 1.0f;
  float z = f * f;
  float y = 7.0376836292E-2f;
  y = y * f - 1.1514610310E-1f;
  y = y * f + 1.1676998740E-1f;
  y = y * f - 1.2420140846E-1f;
  y = y * f + 1.4249322787E-1f;
  y = y * f - 1.6668057665E-1f;
  y = y * f + 2.0000714765E-1f;
  y = y * f - 2.4999993993E-1f;
  y = y * f + 3.3333331174E-1f;
  y = y * f * z;
  float fe = (float)e;
  y += -2.12194440e-4f * fe;
  y += -0.5f * z;
  return f + y + 0.693359375f * fe;
}

static inline vf v_tanh(vf x) {
  const float c = 7.90531110763549805f;
  vf xc = wasm_f32x4_min(wasm_f32x4_max(x, SPLAT(-c)), SPLAT(c));
  vf x2 = MUL(xc, xc);
  vf p = ADD(MUL(x2, SPLAT(-2.76076847742355e-16f)), SPLAT(2.00018790482477e-13f));
  p = ADD(MUL(p, x2), SPLAT(-8.60467152213735e-11f));
  p = ADD(MUL(p, x2), SPLAT(5.12229709037114e-08f));
  p = ADD(MUL(p, x2), SPLAT(1.48572235717979e-05f));
  p = ADD(MUL(p, x2), SPLAT(6.37261928875436e-04f));
  p = ADD(MUL(p, x2), SPLAT(4.89352455891786e-03f));
  p = MUL(p, xc);
  vf q = ADD(MUL(x2, SPLAT(1.19825839466702e-06f)), SPLAT(1.18534705686654e-04f));
  q = ADD(MUL(q, x2), SPLAT(2.26843463243900e-03f));
  q = ADD(MUL(q, x2), SPLAT(4.89352518554385e-03f));
  vf r = DIV(p, q);
  v128_t tiny = wasm_f32x4_lt(wasm_f32x4_abs(x), SPLAT(0.0004f));
  return wasm_v128_bitselect(x, r, tiny);
}

/* ------------------------------------------------------------------------------------------------
 * GEMM: C[M,N] = op(A)·op(B) (+ beta·C) (+ bias[N]), any strides, so every transpose is free.
 * A(i,p) = a[i*sai + p*sap], B(p,j) = b[p*sbp + j*sbj], C(i,j) = c[i*ldc + j].
 * tri: 0 dense; 1 only C(i,j) with j <= i is needed (causal scores); 2 A is lower-triangular
 * (A(i,p) = 0 for p > i); 3 A is upper-triangular (A(i,p) = 0 for p < i). Skipped parts are not computed.
 * ws: at least KC*NC + MR*KC floats.
 * --------------------------------------------------------------------------------------------- */
#define MR 4
#define NR 8
#define KC 256
#define NC 256
#define TRI_OUT_LOWER 1
#define TRI_A_LOWER 2
#define TRI_A_UPPER 3

/*
 * Multiply-add of the GEMM inner loop. The relaxed-SIMD build (-DSTRATA_RELAXED, used when the runtime supports
 * relaxed SIMD: Node >= 22, or Node 20 with --experimental-wasm-relaxed-simd) uses f32x4.relaxed_madd, a fused
 * multiply-add on x86 with FMA: about 1.25x the GEMM throughput of separate mul + add.
 */
#ifdef STRATA_RELAXED
#define MADD(acc, a, b) __builtin_wasm_relaxed_madd_f32x4((a), (b), (acc))
#else
#define MADD(acc, a, b) ADD((acc), MUL((a), (b)))
#endif

/* acc(MR x NR) = sum_p ap[p*MR + i] * bp[p*NR + j], stored/added into c. */
static inline void kern4x8(int kc, const float* ap, const float* bp, float* c, int ldc, int mr, int nr,
                           int first, float beta, const float* bias) {
  vf c00 = SPLAT(0.f), c01 = SPLAT(0.f), c10 = SPLAT(0.f), c11 = SPLAT(0.f);
  vf c20 = SPLAT(0.f), c21 = SPLAT(0.f), c30 = SPLAT(0.f), c31 = SPLAT(0.f);
  for (int p = 0; p < kc; p++) {
    vf b0 = LD(bp), b1 = LD(bp + 4);
    vf a = wasm_v128_load32_splat(ap);
    c00 = MADD(c00, a, b0);
    c01 = MADD(c01, a, b1);
    a = wasm_v128_load32_splat(ap + 1);
    c10 = MADD(c10, a, b0);
    c11 = MADD(c11, a, b1);
    a = wasm_v128_load32_splat(ap + 2);
    c20 = MADD(c20, a, b0);
    c21 = MADD(c21, a, b1);
    a = wasm_v128_load32_splat(ap + 3);
    c30 = MADD(c30, a, b0);
    c31 = MADD(c31, a, b1);
    ap += MR;
    bp += NR;
  }
  vf acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
  if (nr == NR) {
    vf bb0 = SPLAT(0.f), bb1 = SPLAT(0.f);
    if (first && bias) {
      bb0 = LD(bias);
      bb1 = LD(bias + 4);
    }
    for (int i = 0; i < mr; i++) {
      float* cr = c + i * ldc;
      vf x0 = acc[i][0], x1 = acc[i][1];
      if (first) {
        if (bias) {
          x0 = ADD(x0, bb0);
          x1 = ADD(x1, bb1);
        }
        if (beta != 0.f) {
          x0 = ADD(x0, MUL(SPLAT(beta), LD(cr)));
          x1 = ADD(x1, MUL(SPLAT(beta), LD(cr + 4)));
        }
      } else {
        x0 = ADD(x0, LD(cr));
        x1 = ADD(x1, LD(cr + 4));
      }
      ST(cr, x0);
      ST(cr + 4, x1);
    }
  } else {
    for (int i = 0; i < mr; i++) {
      float* cr = c + i * ldc;
      float t[NR];
      ST(t, acc[i][0]);
      ST(t + 4, acc[i][1]);
      for (int j = 0; j < nr; j++) {
        float x = t[j];
        if (first) {
          if (bias) x += bias[j];
          if (beta != 0.f) x += beta * cr[j];
        } else {
          x += cr[j];
        }
        cr[j] = x;
      }
    }
  }
}

/* C = A·B for a few rows (M <= 4, tri == 0): no packing (decoding runs one row per token). */
static void sgemm_small(int M, int N, int K, const float* a, int sai, int sap, const float* b, int sbp, int sbj,
                        float* c, int ldc, float beta, const float* bias) {
  for (int i = 0; i < M; i++) {
    float* cr = c + i * ldc;
    for (int j = 0; j < N; j++) cr[j] = (beta != 0.f ? beta * cr[j] : 0.f) + (bias ? bias[j] : 0.f);
  }
  if (sbj == 1) {
    int n4 = N & ~3;
    for (int p = 0; p < K; p++) {
      const float* br = b + p * sbp;
      for (int i = 0; i < M; i++) {
        float av = a[i * sai + p * sap];
        vf avv = SPLAT(av);
        float* cr = c + i * ldc;
        for (int j = 0; j < n4; j += 4) ST(cr + j, ADD(LD(cr + j), MUL(avv, LD(br + j))));
        for (int j = n4; j < N; j++) cr[j] += av * br[j];
      }
    }
  } else if (sbp == 1 && sap == 1) {
    int k4 = K & ~3;
    for (int i = 0; i < M; i++) {
      const float* ar = a + i * sai;
      float* cr = c + i * ldc;
      for (int j = 0; j < N; j++) {
        const float* bc = b + j * sbj;
        vf acc = SPLAT(0.f);
        for (int p = 0; p < k4; p += 4) acc = ADD(acc, MUL(LD(ar + p), LD(bc + p)));
        float d = hsum(acc);
        for (int p = k4; p < K; p++) d += ar[p] * bc[p];
        cr[j] += d;
      }
    }
  } else {
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) {
        float d = 0.f;
        for (int p = 0; p < K; p++) d += a[i * sai + p * sap] * b[p * sbp + j * sbj];
        c[i * ldc + j] += d;
      }
  }
}

EXPORT(sgemm)
void sgemm(int M, int N, int K, const float* a, int sai, int sap, const float* b, int sbp, int sbj, float* c,
           int ldc, float beta, const float* bias, int tri, float* ws) {
  float* bpack = ws;
  float* apack = ws + KC * NC;
  if (M <= 4 && tri == 0 && K > 0) {
    sgemm_small(M, N, K, a, sai, sap, b, sbp, sbj, c, ldc, beta, bias);
    return;
  }
  if (K <= 0) {
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) c[i * ldc + j] = (beta != 0.f ? beta * c[i * ldc + j] : 0.f) + (bias ? bias[j] : 0.f);
    return;
  }
  for (int p0 = 0; p0 < K; p0 += KC) {
    int kc = K - p0 < KC ? K - p0 : KC;
    int first = p0 == 0;
    for (int j0 = 0; j0 < N; j0 += NC) {
      int nc = N - j0 < NC ? N - j0 : NC;
      /* pack B[p0:p0+kc, j0:j0+nc] into column panels of NR (zero-padded) */
      for (int jp = 0; jp < nc; jp += NR) {
        float* dst = bpack + jp * kc;
        int nr = nc - jp < NR ? nc - jp : NR;
        const float* src = b + p0 * sbp + (j0 + jp) * sbj;
        if (sbj == 1 && nr == NR) {
          for (int p = 0; p < kc; p++) {
            ST(dst + p * NR, LD(src + p * sbp));
            ST(dst + p * NR + 4, LD(src + p * sbp + 4));
          }
        } else if (sbp == 1 && nr == NR) {
          /* B stored transposed: column j is contiguous along p */
          for (int p = 0; p < kc; p++)
            for (int j = 0; j < NR; j++) dst[p * NR + j] = src[p + j * sbj];
        } else {
          for (int p = 0; p < kc; p++)
            for (int j = 0; j < NR; j++) dst[p * NR + j] = j < nr ? src[p * sbp + j * sbj] : 0.f;
        }
      }
      for (int i0 = 0; i0 < M; i0 += MR) {
        int mr = M - i0 < MR ? M - i0 : MR;
        /* p range of this strip */
        int ps = 0, pe = kc;
        if (tri == TRI_A_LOWER) {
          int lim = i0 + mr - p0; /* p < i0+mr */
          pe = lim < kc ? lim : kc;
          if (pe < 0) pe = 0;
        } else if (tri == TRI_A_UPPER) {
          int lo = i0 - p0;
          ps = lo > 0 ? lo : 0;
          if (ps > kc) ps = kc;
        }
        int klen = pe - ps;
        /* pack A strip rows i0..i0+mr, p in [p0+ps, p0+pe) */
        const float* asrc = a + i0 * sai + (p0 + ps) * sap;
        if (mr == MR) {
          if (sai == 1) {
            for (int p = 0; p < klen; p++) ST(apack + p * MR, LD(asrc + p * sap));
          } else {
            for (int p = 0; p < klen; p++) {
              const float* s = asrc + p * sap;
              apack[p * MR] = s[0];
              apack[p * MR + 1] = s[sai];
              apack[p * MR + 2] = s[2 * sai];
              apack[p * MR + 3] = s[3 * sai];
            }
          }
        } else {
          for (int p = 0; p < klen; p++)
            for (int i = 0; i < MR; i++) apack[p * MR + i] = i < mr ? asrc[i * sai + p * sap] : 0.f;
        }
        int jend = nc;
        if (tri == TRI_OUT_LOWER) {
          int lim = i0 + mr - j0; /* columns j <= i0+mr-1 */
          if (lim < jend) jend = lim;
        }
        for (int jp = 0; jp < jend; jp += NR) {
          int nr = nc - jp < NR ? nc - jp : NR;
          kern4x8(klen, apack, bpack + jp * kc + ps * NR, c + i0 * ldc + j0 + jp, ldc, mr, nr, first, beta,
                  bias ? bias + j0 + jp : 0);
        }
      }
    }
  }
}

/* Batched GEMM: `batch` products with element strides between them (0 broadcasts an operand). */
EXPORT(sgemm_batched)
void sgemm_batched(int batch, int M, int N, int K, const float* a, int sai, int sap, int sa, const float* b,
                   int sbp, int sbj, int sb, float* c, int ldc, int sc, float beta, float* ws) {
  for (int q = 0; q < batch; q++) sgemm(M, N, K, a + q * sa, sai, sap, b + q * sb, sbp, sbj, c + q * sc, ldc, beta, 0, 0, ws);
}

/* out[c] = sum_r x[r*C + c] (bias gradients) */
EXPORT(colsum)
void colsum(const float* x, float* out, int R, int C) {
  int c4 = C & ~3;
  for (int c0 = 0; c0 < c4; c0 += 4) ST(out + c0, SPLAT(0.f));
  for (int c0 = c4; c0 < C; c0++) out[c0] = 0.f;
  for (int r = 0; r < R; r++) {
    const float* xr = x + r * C;
    for (int c0 = 0; c0 < c4; c0 += 4) ST(out + c0, ADD(LD(out + c0), LD(xr + c0)));
    for (int c0 = c4; c0 < C; c0++) out[c0] += xr[c0];
  }
}

/* ------------------------------------------------------------------------------------------------
 * Elementwise: GELU (tanh form, GPT-2's gelu_new) forward and backward.
 * --------------------------------------------------------------------------------------------- */
#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_C 0.044715f

static inline vf gelu_v(vf v) {
  vf u = MUL(ADD(v, MUL(MUL(MUL(v, v), v), SPLAT(GELU_C))), SPLAT(GELU_K));
  return MUL(MUL(v, SPLAT(0.5f)), ADD(v_tanh(u), SPLAT(1.f)));
}

static inline vf gelu_grad_v(vf v) {
  vf v2 = MUL(v, v);
  vf u = MUL(ADD(v, MUL(MUL(v2, v), SPLAT(GELU_C))), SPLAT(GELU_K));
  vf t = v_tanh(u);
  vf du = MUL(SPLAT(GELU_K), ADD(SPLAT(1.f), MUL(SPLAT(3.f * GELU_C), v2)));
  return ADD(MUL(SPLAT(0.5f), ADD(t, SPLAT(1.f))), MUL(MUL(MUL(SPLAT(0.5f), v), SUB(SPLAT(1.f), MUL(t, t))), du));
}

/* Two vectors per iteration: the tanh polynomial is a long dependency chain, two independent chains keep
 * the FP pipes busier. */
EXPORT(gelu_fwd)
void gelu_fwd(const float* x, float* y, int n) {
  int n8 = n & ~7, n4 = n & ~3;
  for (int i = 0; i < n8; i += 8) {
    vf a = gelu_v(LD(x + i));
    vf b = gelu_v(LD(x + i + 4));
    ST(y + i, a);
    ST(y + i + 4, b);
  }
  for (int i = n8; i < n4; i += 4) ST(y + i, gelu_v(LD(x + i)));
  for (int i = n4; i < n; i++) y[i] = wasm_f32x4_extract_lane(gelu_v(SPLAT(x[i])), 0);
}

EXPORT(gelu_bwd)
void gelu_bwd(const float* x, const float* dy, float* dx, int n) {
  int n8 = n & ~7, n4 = n & ~3;
  for (int i = 0; i < n8; i += 8) {
    vf a = gelu_grad_v(LD(x + i));
    vf b = gelu_grad_v(LD(x + i + 4));
    ST(dx + i, MUL(LD(dy + i), a));
    ST(dx + i + 4, MUL(LD(dy + i + 4), b));
  }
  for (int i = n8; i < n4; i += 4) ST(dx + i, MUL(LD(dy + i), gelu_grad_v(LD(x + i))));
  for (int i = n4; i < n; i++) dx[i] = dy[i] * wasm_f32x4_extract_lane(gelu_grad_v(SPLAT(x[i])), 0);
}

/* ------------------------------------------------------------------------------------------------
 * SwiGLU with optional per-feature scales: y = (a∘su) ∘ SiLU(g∘sv), SiLU(x) = x·σ(x), σ(x) = 1/(1 + e^{−x}),
 * rows of C; su, sv [C] may be null (no scale). The products in the order of the tfjs composition
 * mul(mul(a, su), mul(n, sigmoid(n))), n = mul(g, sv); σ uses the exp above.
 * --------------------------------------------------------------------------------------------- */
static inline vf sigmoid_v(vf x) { return DIV(SPLAT(1.f), ADD(SPLAT(1.f), v_exp(wasm_f32x4_neg(x)))); }

EXPORT(swiglu_fwd)
void swiglu_fwd(const float* a, const float* g, const float* su, const float* sv, float* y, int R, int C) {
  int c4 = C & ~3;
  for (int r = 0; r < R; r++) {
    const float* ar = a + r * C;
    const float* gr = g + r * C;
    float* yr = y + r * C;
    int c = 0;
    for (; c + 8 <= c4; c += 8) {
      vf u = LD(ar + c), n = LD(gr + c), u2 = LD(ar + c + 4), n2 = LD(gr + c + 4);
      if (su) {
        u = MUL(u, LD(su + c));
        u2 = MUL(u2, LD(su + c + 4));
      }
      if (sv) {
        n = MUL(n, LD(sv + c));
        n2 = MUL(n2, LD(sv + c + 4));
      }
      vf s1 = sigmoid_v(n), s2 = sigmoid_v(n2);
      ST(yr + c, MUL(u, MUL(n, s1)));
      ST(yr + c + 4, MUL(u2, MUL(n2, s2)));
    }
    for (; c < c4; c += 4) {
      vf u = LD(ar + c), n = LD(gr + c);
      if (su) u = MUL(u, LD(su + c));
      if (sv) n = MUL(n, LD(sv + c));
      ST(yr + c, MUL(u, MUL(n, sigmoid_v(n))));
    }
    for (c = c4; c < C; c++) {
      float u = su ? ar[c] * su[c] : ar[c];
      float n = sv ? gr[c] * sv[c] : gr[c];
      float sg = wasm_f32x4_extract_lane(sigmoid_v(SPLAT(n)), 0);
      yr[c] = u * (n * sg);
    }
  }
}

/*
 * Gradients of swiglu_fwd for dy: da, dg [R, C]; dsu, dsv [C] (when the scale is given; rows accumulated in
 * order). With s = σ(n), l = n·s: du = dy·l, dl = dy·u, dn = dl·s + (dl·n)·(s·(1 − s)), da = du·su,
 * dg = dn·sv, dsu = Σ du·a, dsv = Σ dn·g.
 */
static inline void swiglu_grad_v(vf a, vf g, vf su, vf sv, int hasU, int hasV, vf d, vf* da, vf* dg, vf* dsu,
                                 vf* dsv) {
  vf u = hasU ? MUL(a, su) : a;
  vf n = hasV ? MUL(g, sv) : g;
  vf s = sigmoid_v(n);
  vf l = MUL(n, s);
  vf du = MUL(d, l);
  vf dl = MUL(d, u);
  vf dn = ADD(MUL(dl, s), MUL(MUL(dl, n), MUL(s, SUB(SPLAT(1.f), s))));
  *dsu = MUL(du, a);
  *dsv = MUL(dn, g);
  *da = hasU ? MUL(du, su) : du;
  *dg = hasV ? MUL(dn, sv) : dn;
}

EXPORT(swiglu_bwd)
void swiglu_bwd(const float* dy, const float* a, const float* g, const float* su, const float* sv, float* da,
                float* dg, float* dsu, float* dsv, int R, int C) {
  int c4 = C & ~3;
  if (su)
    for (int c = 0; c < C; c++) dsu[c] = 0.f;
  if (sv)
    for (int c = 0; c < C; c++) dsv[c] = 0.f;
  vf zero = SPLAT(0.f);
  for (int r = 0; r < R; r++) {
    const float* ar = a + r * C;
    const float* gr = g + r * C;
    const float* dr = dy + r * C;
    int c = 0;
    /* two vectors per iteration: two independent exp/div chains */
    for (; c + 8 <= c4; c += 8) {
      vf xa, xg, pu, pv, ya, yg, qu, qv;
      swiglu_grad_v(LD(ar + c), LD(gr + c), su ? LD(su + c) : zero, sv ? LD(sv + c) : zero, su != 0, sv != 0,
                    LD(dr + c), &xa, &xg, &pu, &pv);
      swiglu_grad_v(LD(ar + c + 4), LD(gr + c + 4), su ? LD(su + c + 4) : zero, sv ? LD(sv + c + 4) : zero,
                    su != 0, sv != 0, LD(dr + c + 4), &ya, &yg, &qu, &qv);
      ST(da + r * C + c, xa);
      ST(dg + r * C + c, xg);
      ST(da + r * C + c + 4, ya);
      ST(dg + r * C + c + 4, yg);
      if (su) {
        ST(dsu + c, ADD(LD(dsu + c), pu));
        ST(dsu + c + 4, ADD(LD(dsu + c + 4), qu));
      }
      if (sv) {
        ST(dsv + c, ADD(LD(dsv + c), pv));
        ST(dsv + c + 4, ADD(LD(dsv + c + 4), qv));
      }
    }
    for (; c < c4; c += 4) {
      vf xa, xg, pu, pv;
      swiglu_grad_v(LD(ar + c), LD(gr + c), su ? LD(su + c) : zero, sv ? LD(sv + c) : zero, su != 0, sv != 0,
                    LD(dr + c), &xa, &xg, &pu, &pv);
      ST(da + r * C + c, xa);
      ST(dg + r * C + c, xg);
      if (su) ST(dsu + c, ADD(LD(dsu + c), pu));
      if (sv) ST(dsv + c, ADD(LD(dsv + c), pv));
    }
    for (c = c4; c < C; c++) {
      vf xa, xg, pu, pv;
      swiglu_grad_v(SPLAT(ar[c]), SPLAT(gr[c]), SPLAT(su ? su[c] : 0.f), SPLAT(sv ? sv[c] : 0.f), su != 0,
                    sv != 0, SPLAT(dr[c]), &xa, &xg, &pu, &pv);
      da[r * C + c] = wasm_f32x4_extract_lane(xa, 0);
      dg[r * C + c] = wasm_f32x4_extract_lane(xg, 0);
      if (su) dsu[c] += wasm_f32x4_extract_lane(pu, 0);
      if (sv) dsv[c] += wasm_f32x4_extract_lane(pv, 0);
    }
  }
}

/* ------------------------------------------------------------------------------------------------
 * LayerNorm / RMSNorm over the last axis (rows of D). gain/bias may be null (0).
 * --------------------------------------------------------------------------------------------- */
static inline void row_moments(const float* x, int D, float* mean, float* rstd, float eps) {
  int d4 = D & ~3;
  vf s = SPLAT(0.f);
  float ss = 0.f;
  for (int c = 0; c < d4; c += 4) s = ADD(s, LD(x + c));
  ss = hsum(s);
  for (int c = d4; c < D; c++) ss += x[c];
  float m = ss / (float)D;
  vf mv = SPLAT(m);
  vf q = SPLAT(0.f);
  float qq;
  for (int c = 0; c < d4; c += 4) {
    vf t = SUB(LD(x + c), mv);
    q = ADD(q, MUL(t, t));
  }
  qq = hsum(q);
  for (int c = d4; c < D; c++) qq += (x[c] - m) * (x[c] - m);
  float var = qq / (float)D;
  *mean = m;
  *rstd = 1.0f / __builtin_sqrtf(var + eps);
}

EXPORT(layernorm_fwd)
void layernorm_fwd(const float* x, const float* g, const float* b, float* y, int R, int D, float eps) {
  int d4 = D & ~3;
  for (int r = 0; r < R; r++) {
    const float* xr = x + r * D;
    float* yr = y + r * D;
    float m, rs;
    row_moments(xr, D, &m, &rs, eps);
    vf mv = SPLAT(m), rv = SPLAT(rs);
    for (int c = 0; c < d4; c += 4) {
      vf t = MUL(SUB(LD(xr + c), mv), rv);
      if (g) t = MUL(t, LD(g + c));
      if (b) t = ADD(t, LD(b + c));
      ST(yr + c, t);
    }
    for (int c = d4; c < D; c++) {
      float t = (xr[c] - m) * rs;
      if (g) t *= g[c];
      if (b) t += b[c];
      yr[c] = t;
    }
  }
}

/* dx (may be null), dg (may be null), db (may be null) */
EXPORT(layernorm_bwd)
void layernorm_bwd(const float* dy, const float* x, const float* g, float* dx, float* dg, float* db, int R, int D,
                   float eps) {
  int d4 = D & ~3;
  if (dg)
    for (int c = 0; c < D; c++) dg[c] = 0.f;
  if (db)
    for (int c = 0; c < D; c++) db[c] = 0.f;
  float invD = 1.0f / (float)D;
  for (int r = 0; r < R; r++) {
    const float* xr = x + r * D;
    const float* dyr = dy + r * D;
    float m, rs;
    row_moments(xr, D, &m, &rs, eps);
    vf mv = SPLAT(m), rv = SPLAT(rs);
    vf s1 = SPLAT(0.f), s2 = SPLAT(0.f);
    for (int c = 0; c < d4; c += 4) {
      vf xh = MUL(SUB(LD(xr + c), mv), rv);
      vf d = LD(dyr + c);
      if (dg) ST(dg + c, ADD(LD(dg + c), MUL(d, xh)));
      if (db) ST(db + c, ADD(LD(db + c), d));
      vf gd = g ? MUL(d, LD(g + c)) : d;
      s1 = ADD(s1, gd);
      s2 = ADD(s2, MUL(gd, xh));
    }
    float a1 = hsum(s1), a2 = hsum(s2);
    for (int c = d4; c < D; c++) {
      float xh = (xr[c] - m) * rs;
      float d = dyr[c];
      if (dg) dg[c] += d * xh;
      if (db) db[c] += d;
      float gd = g ? d * g[c] : d;
      a1 += gd;
      a2 += gd * xh;
    }
    if (!dx) continue;
    float m1 = a1 * invD, m2 = a2 * invD;
    vf m1v = SPLAT(m1), m2v = SPLAT(m2);
    float* dxr = dx + r * D;
    for (int c = 0; c < d4; c += 4) {
      vf xh = MUL(SUB(LD(xr + c), mv), rv);
      vf d = LD(dyr + c);
      vf gd = g ? MUL(d, LD(g + c)) : d;
      ST(dxr + c, MUL(rv, SUB(SUB(gd, m1v), MUL(xh, m2v))));
    }
    for (int c = d4; c < D; c++) {
      float xh = (xr[c] - m) * rs;
      float gd = g ? dyr[c] * g[c] : dyr[c];
      dxr[c] = rs * (gd - m1 - xh * m2);
    }
  }
}

static inline float row_rms(const float* x, int D, float eps) {
  int d4 = D & ~3;
  vf q = SPLAT(0.f);
  for (int c = 0; c < d4; c += 4) {
    vf t = LD(x + c);
    q = ADD(q, MUL(t, t));
  }
  float qq = hsum(q);
  for (int c = d4; c < D; c++) qq += x[c] * x[c];
  return 1.0f / __builtin_sqrtf(qq / (float)D + eps);
}

/* One row of RMSNorm: y = x·rs (·g) (·post), rs = 1/√(mean(x²) + eps); g may be null, post = 1 skips it. */
static inline void rms_fwd_row(const float* xr, const float* g, float* yr, int D, float eps, float post) {
  int d4 = D & ~3;
  float rs = row_rms(xr, D, eps);
  vf rv = SPLAT(rs), pv = SPLAT(post);
  for (int c = 0; c < d4; c += 4) {
    vf t = MUL(LD(xr + c), rv);
    if (g) t = MUL(t, LD(g + c));
    if (post != 1.f) t = MUL(t, pv);
    ST(yr + c, t);
  }
  for (int c = d4; c < D; c++) {
    float t = g ? xr[c] * rs * g[c] : xr[c] * rs;
    yr[c] = post != 1.f ? t * post : t;
  }
}

/*
 * One row of the RMSNorm gradient for the incoming gradient dy·dscale (dscale = 1 skips the product):
 * dx = rs·(g∘d − x̂·mean(g∘d∘x̂)), x̂ = x·rs; dg (may be null) accumulates d∘x̂. dx may be null.
 */
static inline void rms_bwd_row(const float* dyr, const float* xr, const float* g, float* dxr, float* dg, int D,
                               float eps, float dscale) {
  int d4 = D & ~3;
  float invD = 1.0f / (float)D;
  float rs = row_rms(xr, D, eps);
  vf rv = SPLAT(rs), sv = SPLAT(dscale);
  vf s2 = SPLAT(0.f);
  for (int c = 0; c < d4; c += 4) {
    vf xh = MUL(LD(xr + c), rv);
    vf d = LD(dyr + c);
    if (dscale != 1.f) d = MUL(d, sv);
    if (dg) ST(dg + c, ADD(LD(dg + c), MUL(d, xh)));
    vf gd = g ? MUL(d, LD(g + c)) : d;
    s2 = ADD(s2, MUL(gd, xh));
  }
  float a2 = hsum(s2);
  for (int c = d4; c < D; c++) {
    float xh = xr[c] * rs;
    float d = dscale != 1.f ? dyr[c] * dscale : dyr[c];
    if (dg) dg[c] += d * xh;
    float gd = g ? d * g[c] : d;
    a2 += gd * xh;
  }
  if (!dxr) return;
  vf m2v = SPLAT(a2 * invD);
  float m2 = a2 * invD;
  for (int c = 0; c < d4; c += 4) {
    vf xh = MUL(LD(xr + c), rv);
    vf d = LD(dyr + c);
    if (dscale != 1.f) d = MUL(d, sv);
    vf gd = g ? MUL(d, LD(g + c)) : d;
    ST(dxr + c, MUL(rv, SUB(gd, MUL(xh, m2v))));
  }
  for (int c = d4; c < D; c++) {
    float xh = xr[c] * rs;
    float d = dscale != 1.f ? dyr[c] * dscale : dyr[c];
    float gd = g ? d * g[c] : d;
    dxr[c] = rs * (gd - xh * m2);
  }
}

EXPORT(rmsnorm_fwd)
void rmsnorm_fwd(const float* x, const float* g, float* y, int R, int D, float eps) {
  for (int r = 0; r < R; r++) rms_fwd_row(x + r * D, g, y + r * D, D, eps, 1.f);
}

EXPORT(rmsnorm_bwd)
void rmsnorm_bwd(const float* dy, const float* x, const float* g, float* dx, float* dg, int R, int D, float eps) {
  if (dg)
    for (int c = 0; c < D; c++) dg[c] = 0.f;
  for (int r = 0; r < R; r++) rms_bwd_row(dy + r * D, x + r * D, g, dx ? dx + r * D : 0, dg, D, eps, 1.f);
}

/* ------------------------------------------------------------------------------------------------
 * nGPT's Norm(x) = x/√(Σx² + ε) over rows of D, computed as RMSNorm(x; eps = ε/D)·post with post = 1/√D
 * (the caller passes both, rounded to float32): the same float32 operations as an RMSNorm kernel followed by
 * a multiplication by the scalar post, forward and backward, in one pass each.
 * --------------------------------------------------------------------------------------------- */
EXPORT(l2norm_fwd)
void l2norm_fwd(const float* x, float* y, int R, int D, float eps, float post) {
  for (int r = 0; r < R; r++) rms_fwd_row(x + r * D, 0, y + r * D, D, eps, post);
}

EXPORT(l2norm_bwd)
void l2norm_bwd(const float* dy, const float* x, float* dx, int R, int D, float eps, float post) {
  for (int r = 0; r < R; r++) rms_bwd_row(dy + r * D, x + r * D, 0, dx + r * D, 0, D, eps, post);
}

/*
 * Norm along the columns of x [R, C] (each column divided by √(Σ_r x² + eps)): the unit-norm projection of
 * a matrix whose d_model axis is its first. Sums of squares accumulate row by row. ws: C floats.
 */
EXPORT(l2norm_cols_fwd)
void l2norm_cols_fwd(const float* x, float* y, int R, int C, float eps, float* ws) {
  int c4 = C & ~3;
  float* rs = ws;
  for (int c = 0; c < C; c++) rs[c] = 0.f;
  for (int r = 0; r < R; r++) {
    const float* xr = x + r * C;
    for (int c = 0; c < c4; c += 4) {
      vf t = LD(xr + c);
      ST(rs + c, ADD(LD(rs + c), MUL(t, t)));
    }
    for (int c = c4; c < C; c++) rs[c] += xr[c] * xr[c];
  }
  for (int c = 0; c < C; c++) rs[c] = 1.0f / __builtin_sqrtf(rs[c] + eps);
  for (int r = 0; r < R; r++) {
    const float* xr = x + r * C;
    float* yr = y + r * C;
    for (int c = 0; c < c4; c += 4) ST(yr + c, MUL(LD(xr + c), LD(rs + c)));
    for (int c = c4; c < C; c++) yr[c] = xr[c] * rs[c];
  }
}

/* dx = rs·(dy − y·Σ_r(dy∘y)) per column, y = x·rs. ws: 2·C floats. */
EXPORT(l2norm_cols_bwd)
void l2norm_cols_bwd(const float* dy, const float* x, float* dx, int R, int C, float eps, float* ws) {
  float* rs = ws;
  float* a = ws + C;
  for (int c = 0; c < C; c++) rs[c] = a[c] = 0.f;
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) rs[c] += x[r * C + c] * x[r * C + c];
  for (int c = 0; c < C; c++) rs[c] = 1.0f / __builtin_sqrtf(rs[c] + eps);
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) a[c] += dy[r * C + c] * (x[r * C + c] * rs[c]);
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) dx[r * C + c] = rs[c] * (dy[r * C + c] - (x[r * C + c] * rs[c]) * a[c]);
}

/*
 * nGPT's residual update on rows of D (NVIDIA's form, the stream normalized again first):
 *   A = Norm(h), B = Norm(b), out = Norm(A + (B − A)∘α)
 * with Norm as in l2norm_fwd (eps = ε/D, post = 1/√D). The same float32 operations as that composition of
 * l2norm, subtraction, per-feature product and addition. ws: 3·D floats (fwd and bwd).
 */
static inline void ngpt_residual_row(const float* hr, const float* br, const float* alpha, float* A, float* Bn,
                                     float* P, int D, float eps, float post) {
  int d4 = D & ~3;
  rms_fwd_row(hr, 0, A, D, eps, post);
  rms_fwd_row(br, 0, Bn, D, eps, post);
  for (int c = 0; c < d4; c += 4) {
    vf a = LD(A + c);
    ST(P + c, ADD(a, MUL(SUB(LD(Bn + c), a), LD(alpha + c))));
  }
  for (int c = d4; c < D; c++) P[c] = A[c] + (Bn[c] - A[c]) * alpha[c];
}

EXPORT(ngpt_residual_fwd)
void ngpt_residual_fwd(const float* h, const float* b, const float* alpha, float* out, int R, int D, float eps,
                       float post, float* ws) {
  float* A = ws;
  float* Bn = A + D;
  float* P = Bn + D;
  for (int r = 0; r < R; r++) {
    ngpt_residual_row(h + r * D, b + r * D, alpha, A, Bn, P, D, eps, post);
    rms_fwd_row(P, 0, out + r * D, D, eps, post);
  }
}

/*
 * Gradients of ngpt_residual_fwd: dh, db [R, D], dalpha [D] (rows accumulated in order, as a column sum).
 * dP = Norm'(P)ᵀ dy; dα += dP∘(B − A); dB = dP∘α; dA = dP − dB; dh = Norm'(h)ᵀ dA; db = Norm'(b)ᵀ dB.
 */
EXPORT(ngpt_residual_bwd)
void ngpt_residual_bwd(const float* dy, const float* h, const float* b, const float* alpha, float* dh, float* db,
                       float* dalpha, int R, int D, float eps, float post, float* ws) {
  int d4 = D & ~3;
  float* A = ws;
  float* Bn = A + D;
  float* P = Bn + D;
  for (int c = 0; c < D; c++) dalpha[c] = 0.f;
  for (int r = 0; r < R; r++) {
    ngpt_residual_row(h + r * D, b + r * D, alpha, A, Bn, P, D, eps, post);
    /* dP into P (its values are no longer needed after the gradient of the outer Norm) */
    rms_bwd_row(dy + r * D, P, 0, P, 0, D, eps, post);
    /* dα, then dB into Bn, dA into A */
    for (int c = 0; c < d4; c += 4) {
      vf dp = LD(P + c), a = LD(A + c);
      vf diff = SUB(LD(Bn + c), a);
      ST(dalpha + c, ADD(LD(dalpha + c), MUL(dp, diff)));
      vf dbv = MUL(dp, LD(alpha + c));
      ST(Bn + c, dbv);
      ST(A + c, SUB(dp, dbv));
    }
    for (int c = d4; c < D; c++) {
      float dp = P[c];
      dalpha[c] += dp * (Bn[c] - A[c]);
      float dbv = dp * alpha[c];
      Bn[c] = dbv;
      A[c] = dp - dbv;
    }
    rms_bwd_row(A, h + r * D, 0, dh + r * D, 0, D, eps, post);
    rms_bwd_row(Bn, b + r * D, 0, db + r * D, 0, D, eps, post);
  }
}

/* ------------------------------------------------------------------------------------------------
 * Softmax cross-entropy with integer targets: loss = mean_r (logsumexp(l_r) - l_r[t_r]).
 * --------------------------------------------------------------------------------------------- */
static float row_lse(const float* l, int V) {
  int v4 = V & ~3;
  vf mx = SPLAT(-3.4e38f);
  for (int c = 0; c < v4; c += 4) mx = wasm_f32x4_max(mx, LD(l + c));
  float m = hmax(mx);
  for (int c = v4; c < V; c++) m = l[c] > m ? l[c] : m;
  vf mv = SPLAT(m), s = SPLAT(0.f);
  for (int c = 0; c < v4; c += 4) s = ADD(s, v_exp(SUB(LD(l + c), mv)));
  float ss = hsum(s);
  for (int c = v4; c < V; c++) ss += f_exp(l[c] - m);
  return m + f_log(ss);
}

EXPORT(xent_fwd)
void xent_fwd(const float* logits, const int* targets, float* out, int R, int V) {
  double total = 0.0;
  for (int r = 0; r < R; r++) {
    const float* l = logits + r * V;
    int t = targets[r];
    float lt = (t >= 0 && t < V) ? l[t] : 0.f;
    total += (double)(row_lse(l, V) - lt);
  }
  out[0] = (float)(total / (double)R);
}

/* dlogits = (softmax(l) - onehot(t)) * dloss[0] / R */
EXPORT(xent_bwd)
void xent_bwd(const float* logits, const int* targets, const float* dloss, float* dl, int R, int V) {
  float scale = dloss[0] / (float)R;
  int v4 = V & ~3;
  for (int r = 0; r < R; r++) {
    const float* l = logits + r * V;
    float* o = dl + r * V;
    float lse = row_lse(l, V);
    vf lv = SPLAT(lse), sv = SPLAT(scale);
    for (int c = 0; c < v4; c += 4) ST(o + c, MUL(v_exp(SUB(LD(l + c), lv)), sv));
    for (int c = v4; c < V; c++) o[c] = f_exp(l[c] - lse) * scale;
    int t = targets[r];
    if (t >= 0 && t < V) o[t] -= scale;
  }
}

/* ------------------------------------------------------------------------------------------------
 * Embedding: out[n] = table[ids[n]] (+ pos[n % T]); backward scatter-adds.
 * --------------------------------------------------------------------------------------------- */
EXPORT(embed_fwd)
void embed_fwd(const float* table, const int* ids, const float* pos, float* out, int N, int D, int V, int T) {
  int d4 = D & ~3;
  for (int n = 0; n < N; n++) {
    int id = ids[n];
    float* o = out + n * D;
    const float* pr = pos ? pos + (n % T) * D : 0;
    if (id < 0 || id >= V) {
      for (int c = 0; c < D; c++) o[c] = pr ? pr[c] : 0.f;
      continue;
    }
    const float* src = table + id * D;
    if (pr) {
      for (int c = 0; c < d4; c += 4) ST(o + c, ADD(LD(src + c), LD(pr + c)));
      for (int c = d4; c < D; c++) o[c] = src[c] + pr[c];
    } else {
      for (int c = 0; c < d4; c += 4) ST(o + c, LD(src + c));
      for (int c = d4; c < D; c++) o[c] = src[c];
    }
  }
}

/* dtable[V, D] = scatter-add of dy rows by ids (may be null); dpos[P, D] = sum of dy rows by n % T (may be null) */
EXPORT(embed_bwd)
void embed_bwd(const float* dy, const int* ids, float* dtable, float* dpos, int N, int D, int V, int T, int P) {
  int d4 = D & ~3;
  if (dtable)
    for (int i = 0; i < V * D; i++) dtable[i] = 0.f;
  if (dpos)
    for (int i = 0; i < P * D; i++) dpos[i] = 0.f;
  for (int n = 0; n < N; n++) {
    const float* d = dy + n * D;
    if (dtable) {
      int id = ids[n];
      if (id >= 0 && id < V) {
        float* o = dtable + id * D;
        for (int c = 0; c < d4; c += 4) ST(o + c, ADD(LD(o + c), LD(d + c)));
        for (int c = d4; c < D; c++) o[c] += d[c];
      }
    }
    if (dpos) {
      float* o = dpos + (n % T) * D;
      for (int c = 0; c < d4; c += 4) ST(o + c, ADD(LD(o + c), LD(d + c)));
      for (int c = d4; c < D; c++) o[c] += d[c];
    }
  }
}

/* ------------------------------------------------------------------------------------------------
 * Fused causal multi-head self-attention on a fused QKV activation.
 * qkv: [B*T, 3*D] with columns q | k | v, heads contiguous (head h at h*hd) inside each; D = H*hd.
 * Optional RoPE (rotate-half): cosT/sinT [T, hd] (null: none), applied to q and k.
 * y: [B*T, D] (heads merged). stats: [B*H*T*2] = (row max, row sum of exp) of the softmax, for backward.
 * scores = (q_rot · k_rotᵀ)·scale, causal mask, softmax, · v.
 * ws: 2*T*hd + T*T + KC*NC + MR*KC floats (fwd); 3*T*hd + 2*T*T + KC*NC + MR*KC (bwd).
 * --------------------------------------------------------------------------------------------- */
static void load_head(const float* src, int ld, int T, int hd, const float* cosT, const float* sinT, float scale,
                      float* dst) {
  int half = hd >> 1;
  for (int t = 0; t < T; t++) {
    const float* s = src + t * ld;
    float* o = dst + t * hd;
    if (cosT) {
      const float* cr = cosT + t * hd;
      const float* sr = sinT + t * hd;
      for (int c = 0; c < half; c++) o[c] = (s[c] * cr[c] - s[c + half] * sr[c]) * scale;
      for (int c = half; c < hd; c++) o[c] = (s[c] * cr[c] + s[c - half] * sr[c]) * scale;
    } else {
      for (int c = 0; c < hd; c++) o[c] = s[c] * scale;
    }
  }
}

/* dst (strided) = RoPEᵀ(g)·scale, the gradient through load_head */
static void store_head_grad(const float* g, int T, int hd, const float* cosT, const float* sinT, float scale,
                            float* dst, int ld) {
  int half = hd >> 1;
  for (int t = 0; t < T; t++) {
    const float* s = g + t * hd;
    float* o = dst + t * ld;
    if (cosT) {
      const float* cr = cosT + t * hd;
      const float* sr = sinT + t * hd;
      /* y1 = x1 c - x2 s ; y2 = x2 c + x1 s  =>  dx1 = dy1 c + dy2 s ; dx2 = dy2 c - dy1 s */
      for (int c = 0; c < half; c++) o[c] = (s[c] * cr[c] + s[c + half] * sr[c + half]) * scale;
      for (int c = half; c < hd; c++) o[c] = (s[c] * cr[c] - s[c - half] * sr[c - half]) * scale;
    } else {
      for (int c = 0; c < hd; c++) o[c] = s[c] * scale;
    }
  }
}

/*
 * nGPT's q/k normalization on a fused QKV activation [N, 3D] (row n is position n % T), per head of hd:
 *   q ← s ∘ Norm(RoPE(q)),  k ← s ∘ Norm(RoPE(k)),  v unchanged (copied),
 * RoPE as load_head (cosT/sinT [T, hd], or null for none), Norm as l2norm_fwd (eps = ε/hd, post = 1/√hd),
 * s [D] (head h uses s[h·hd …]). The same float32 operations as the composition RoPE → l2norm → product.
 * ws: hd floats.
 */
EXPORT(qknorm_fwd)
void qknorm_fwd(const float* qkv, const float* cosT, const float* sinT, const float* s, float* out, int N, int T,
                int H, int hd, float eps, float post, float* ws) {
  int D = H * hd, D3 = 3 * D, h4 = hd & ~3;
  float* rot = ws;
  for (int n = 0; n < N; n++) {
    int t = n % T;
    const float* row = qkv + n * D3;
    float* o = out + n * D3;
    for (int part = 0; part < 2; part++)
      for (int h = 0; h < H; h++) {
        const float* sh = s + h * hd;
        float* oh = o + part * D + h * hd;
        load_head(row + part * D + h * hd, D3, 1, hd, cosT ? cosT + t * hd : 0, sinT ? sinT + t * hd : 0, 1.0f,
                  rot);
        rms_fwd_row(rot, 0, oh, hd, eps, post);
        for (int c = 0; c < h4; c += 4) ST(oh + c, MUL(LD(oh + c), LD(sh + c)));
        for (int c = h4; c < hd; c++) oh[c] *= sh[c];
      }
    for (int c = 0; c < D; c++) o[2 * D + c] = row[2 * D + c];
  }
}

/*
 * Gradients of qknorm_fwd for dy [N, 3D]: dqkv [N, 3D] and ds [D] = Σ_rows dy_q∘q̂ + Σ_rows dy_k∘k̂ (q̂, k̂ the
 * normalized rows before the scale; each sum accumulated row by row, then the two added).
 * ws: 3·hd + 2·D floats.
 */
EXPORT(qknorm_bwd)
void qknorm_bwd(const float* dy, const float* qkv, const float* cosT, const float* sinT, const float* s,
                float* dqkv, float* ds, int N, int T, int H, int hd, float eps, float post, float* ws) {
  int D = H * hd, D3 = 3 * D, h4 = hd & ~3;
  float* rot = ws;
  float* nrm = rot + hd;
  float* g = nrm + hd;
  float* acc = g + hd; /* [2][D]: the q and k column sums */
  for (int c = 0; c < 2 * D; c++) acc[c] = 0.f;
  for (int n = 0; n < N; n++) {
    int t = n % T;
    const float* row = qkv + n * D3;
    const float* drow = dy + n * D3;
    float* orow = dqkv + n * D3;
    const float* cr = cosT ? cosT + t * hd : 0;
    const float* sr = sinT ? sinT + t * hd : 0;
    for (int part = 0; part < 2; part++)
      for (int h = 0; h < H; h++) {
        const float* sh = s + h * hd;
        const float* dh = drow + part * D + h * hd;
        float* ah = acc + part * D + h * hd;
        load_head(row + part * D + h * hd, D3, 1, hd, cr, sr, 1.0f, rot);
        rms_fwd_row(rot, 0, nrm, hd, eps, post);
        for (int c = 0; c < h4; c += 4) {
          vf d = LD(dh + c);
          ST(ah + c, ADD(LD(ah + c), MUL(d, LD(nrm + c))));
          ST(g + c, MUL(d, LD(sh + c)));
        }
        for (int c = h4; c < hd; c++) {
          ah[c] += dh[c] * nrm[c];
          g[c] = dh[c] * sh[c];
        }
        rms_bwd_row(g, rot, 0, g, 0, hd, eps, post);
        store_head_grad(g, 1, hd, cr, sr, 1.0f, orow + part * D + h * hd, D3);
      }
    for (int c = 0; c < D; c++) orow[2 * D + c] = drow[2 * D + c];
  }
  for (int c = 0; c < D; c++) ds[c] = acc[c] + acc[D + c];
}

static void causal_softmax(float* S, int T, float* stats) {
  for (int i = 0; i < T; i++) {
    float* row = S + i * T;
    int n = i + 1;
    int n4 = n & ~3;
    vf mx = SPLAT(-3.4e38f);
    for (int j = 0; j < n4; j += 4) mx = wasm_f32x4_max(mx, LD(row + j));
    float m = hmax(mx);
    for (int j = n4; j < n; j++) m = row[j] > m ? row[j] : m;
    vf mv = SPLAT(m), s = SPLAT(0.f);
    for (int j = 0; j < n4; j += 4) {
      vf e = v_exp(SUB(LD(row + j), mv));
      ST(row + j, e);
      s = ADD(s, e);
    }
    float sum = hsum(s);
    for (int j = n4; j < n; j++) {
      float e = f_exp(row[j] - m);
      row[j] = e;
      sum += e;
    }
    float inv = 1.0f / sum;
    vf iv = SPLAT(inv);
    for (int j = 0; j < n4; j += 4) ST(row + j, MUL(LD(row + j), iv));
    for (int j = n4; j < n; j++) row[j] *= inv;
    for (int j = n; j < T; j++) row[j] = 0.f;
    if (stats) {
      stats[2 * i] = m;
      stats[2 * i + 1] = inv;
    }
  }
}

/* P = exp(S - m)·inv from saved stats (same values as the forward) */
static void causal_softmax_from_stats(float* S, int T, const float* stats) {
  for (int i = 0; i < T; i++) {
    float* row = S + i * T;
    int n = i + 1;
    int n4 = n & ~3;
    float m = stats[2 * i], inv = stats[2 * i + 1];
    vf mv = SPLAT(m), iv = SPLAT(inv);
    for (int j = 0; j < n4; j += 4) ST(row + j, MUL(v_exp(SUB(LD(row + j), mv)), iv));
    for (int j = n4; j < n; j++) row[j] = f_exp(row[j] - m) * inv;
    for (int j = n; j < T; j++) row[j] = 0.f;
  }
}

EXPORT(attn_fwd)
void attn_fwd(const float* qkv, const float* cosT, const float* sinT, float* y, float* stats, int B, int T, int H,
              int hd, float scale, float* ws) {
  int D = H * hd, D3 = 3 * D;
  float* Q = ws;
  float* Kh = Q + T * hd;
  float* S = Kh + T * hd;
  float* gws = S + T * T;
  for (int b = 0; b < B; b++) {
    const float* base = qkv + b * T * D3;
    for (int h = 0; h < H; h++) {
      load_head(base + h * hd, D3, T, hd, cosT, sinT, scale, Q);
      load_head(base + D + h * hd, D3, T, hd, cosT, sinT, 1.0f, Kh);
      sgemm(T, T, hd, Q, hd, 1, Kh, 1, hd, S, T, 0.f, 0, TRI_OUT_LOWER, gws);
      causal_softmax(S, T, stats ? stats + ((b * H + h) * T) * 2 : 0);
      sgemm(T, hd, T, S, T, 1, base + 2 * D + h * hd, D3, 1, y + b * T * D + h * hd, D, 0.f, 0, TRI_A_LOWER, gws);
    }
  }
}

EXPORT(attn_bwd)
void attn_bwd(const float* dy, const float* qkv, const float* cosT, const float* sinT, const float* stats,
              float* dqkv, int B, int T, int H, int hd, float scale, float* ws) {
  int D = H * hd, D3 = 3 * D;
  float* Q = ws;
  float* Kh = Q + T * hd;
  float* tmp = Kh + T * hd;
  float* P = tmp + T * hd;
  float* dP = P + T * T;
  float* gws = dP + T * T;
  for (int b = 0; b < B; b++) {
    const float* base = qkv + b * T * D3;
    float* dbase = dqkv + b * T * D3;
    const float* dO_b = dy + b * T * D;
    for (int h = 0; h < H; h++) {
      const float* V = base + 2 * D + h * hd;
      const float* dO = dO_b + h * hd;
      load_head(base + h * hd, D3, T, hd, cosT, sinT, scale, Q);
      load_head(base + D + h * hd, D3, T, hd, cosT, sinT, 1.0f, Kh);
      sgemm(T, T, hd, Q, hd, 1, Kh, 1, hd, P, T, 0.f, 0, TRI_OUT_LOWER, gws);
      causal_softmax_from_stats(P, T, stats + ((b * H + h) * T) * 2);
      /* dV = Pᵀ·dO */
      sgemm(T, hd, T, P, 1, T, dO, D, 1, dbase + 2 * D + h * hd, D3, 0.f, 0, TRI_A_UPPER, gws);
      /* dP = dO·Vᵀ */
      sgemm(T, T, hd, dO, D, 1, V, 1, D3, dP, T, 0.f, 0, TRI_OUT_LOWER, gws);
      /* dS = P ∘ (dP − rowsum(P∘dP)) */
      for (int i = 0; i < T; i++) {
        float* pr = P + i * T;
        float* dr = dP + i * T;
        int n = i + 1, n4 = n & ~3;
        vf acc = SPLAT(0.f);
        for (int j = 0; j < n4; j += 4) acc = ADD(acc, MUL(LD(pr + j), LD(dr + j)));
        float s = hsum(acc);
        for (int j = n4; j < n; j++) s += pr[j] * dr[j];
        vf sv = SPLAT(s);
        for (int j = 0; j < n4; j += 4) ST(dr + j, MUL(LD(pr + j), SUB(LD(dr + j), sv)));
        for (int j = n4; j < n; j++) dr[j] = pr[j] * (dr[j] - s);
        for (int j = n; j < T; j++) dr[j] = 0.f;
      }
      /* dQ_rot = dS·K_rot·scale */
      sgemm(T, hd, T, dP, T, 1, Kh, hd, 1, tmp, hd, 0.f, 0, TRI_A_LOWER, gws);
      store_head_grad(tmp, T, hd, cosT, sinT, scale, dbase + h * hd, D3);
      /* dK_rot = dSᵀ·(Q_rot·scale) */
      sgemm(T, hd, T, dP, 1, T, Q, hd, 1, tmp, hd, 0.f, 0, TRI_A_UPPER, gws);
      store_head_grad(tmp, T, hd, cosT, sinT, 1.0f, dbase + D + h * hd, D3);
    }
  }
}

/*
 * Incremental (KV-cached) attention for generation: n new positions at p0..p0+n-1.
 * qkv [B*n, 3D] (fresh projections), cosT/sinT [n, hd] RoPE tables of the new positions (or null).
 * kc, vc [B, H, Tmax, hd]: the cache; the new keys (after RoPE) and values are written at p0.. in place.
 * y [B*n, D]: softmax(q·kᵀ·scale, causal)·v over positions 0..p0+i for new position i.
 * ws: Tmax + hd floats.
 */
EXPORT(attn_decode)
void attn_decode(const float* qkv, const float* cosT, const float* sinT, float* kc, float* vc, float* y, int B,
                 int n, int H, int hd, int p0, int Tmax, float scale, float* ws) {
  int D = H * hd, D3 = 3 * D;
  float* sc = ws;
  float* q = ws + Tmax;
  for (int b = 0; b < B; b++) {
    for (int h = 0; h < H; h++) {
      float* kh = kc + ((b * H + h) * Tmax) * hd;
      float* vh = vc + ((b * H + h) * Tmax) * hd;
      for (int i = 0; i < n; i++) {
        const float* row = qkv + (b * n + i) * D3;
        load_head(row + D + h * hd, D3, 1, hd, cosT ? cosT + i * hd : 0, sinT ? sinT + i * hd : 0, 1.0f,
                  kh + (p0 + i) * hd);
        for (int c = 0; c < hd; c++) vh[(p0 + i) * hd + c] = row[2 * D + h * hd + c];
      }
      for (int i = 0; i < n; i++) {
        const float* row = qkv + (b * n + i) * D3;
        load_head(row + h * hd, D3, 1, hd, cosT ? cosT + i * hd : 0, sinT ? sinT + i * hd : 0, 1.0f, q);
        int L = p0 + i + 1;
        float m = -3.4e38f;
        for (int j = 0; j < L; j++) {
          const float* kr = kh + j * hd;
          vf acc = SPLAT(0.f);
          int c = 0;
          for (; c + 4 <= hd; c += 4) acc = ADD(acc, MUL(LD(q + c), LD(kr + c)));
          float d = hsum(acc);
          for (; c < hd; c++) d += q[c] * kr[c];
          d *= scale;
          sc[j] = d;
          m = d > m ? d : m;
        }
        float sum = 0.f;
        for (int j = 0; j < L; j++) {
          float e = f_exp(sc[j] - m);
          sc[j] = e;
          sum += e;
        }
        float inv = 1.0f / sum;
        float* out = y + (b * n + i) * D + h * hd;
        for (int c = 0; c < hd; c++) out[c] = 0.f;
        for (int j = 0; j < L; j++) {
          float pj = sc[j] * inv;
          const float* vr = vh + j * hd;
          int c = 0;
          for (; c + 4 <= hd; c += 4) ST(out + c, ADD(LD(out + c), MUL(SPLAT(pj), LD(vr + c))));
          for (; c < hd; c++) out[c] += pj * vr[c];
        }
      }
    }
  }
}

/* ------------------------------------------------------------------------------------------------
 * Optimizer and reductions.
 * --------------------------------------------------------------------------------------------- */
/* sum of squares of n floats, accumulated in double */
EXPORT(sumsq)
double sumsq(const float* x, int n) {
  int n4 = n & ~3;
  double total = 0.0;
  int i = 0;
  while (i < n4) {
    int end = i + 4096 < n4 ? i + 4096 : n4;
    vf acc = SPLAT(0.f);
    for (; i < end; i += 4) {
      vf t = LD(x + i);
      acc = ADD(acc, MUL(t, t));
    }
    total += (double)hsum(acc);
  }
  for (; i < n; i++) total += (double)x[i] * (double)x[i];
  return total;
}

/*
 * AdamW, the same float32 operations as Strata's AdamW (train/adamw.ts):
 * g = g0·scale; m' = m·b1 + g·omb1; v' = v·b2 + g²·omb2 (omb = 1 − b, rounded by the caller as tfjs does); u = (m'/bc1) / (sqrt(v'/bc2) + eps);
 * p' = p·decay − u·lr  (decay = 1 − lr·λ, or 1).
 */
EXPORT(adamw)
void adamw(const float* p, const float* g0, const float* m, const float* v, float* po, float* mo, float* vo, int n,
           float lr, float b1, float b2, float omb1, float omb2, float eps, float decay, float bc1, float bc2,
           float scale) {
  int n4 = n & ~3;
  vf vb1 = SPLAT(b1), vb2 = SPLAT(b2), v1b1 = SPLAT(omb1), v1b2 = SPLAT(omb2);
  vf vbc1 = SPLAT(bc1), vbc2 = SPLAT(bc2), veps = SPLAT(eps), vlr = SPLAT(lr), vdec = SPLAT(decay), vsc = SPLAT(scale);
  for (int i = 0; i < n4; i += 4) {
    vf g = LD(g0 + i);
    if (scale != 1.f) g = MUL(g, vsc);
    vf mn = ADD(MUL(LD(m + i), vb1), MUL(g, v1b1));
    vf vn = ADD(MUL(LD(v + i), vb2), MUL(MUL(g, g), v1b2));
    vf u = DIV(DIV(mn, vbc1), ADD(wasm_f32x4_sqrt(DIV(vn, vbc2)), veps));
    vf pp = LD(p + i);
    if (decay != 1.f) pp = MUL(pp, vdec);
    ST(mo + i, mn);
    ST(vo + i, vn);
    ST(po + i, SUB(pp, MUL(u, vlr)));
  }
  for (int i = n4; i < n; i++) {
    float g = g0[i];
    if (scale != 1.f) g *= scale;
    float mn = m[i] * b1 + g * omb1;
    float vn = v[i] * b2 + (g * g) * omb2;
    float u = (mn / bc1) / (__builtin_sqrtf(vn / bc2) + eps);
    float pp = decay != 1.f ? p[i] * decay : p[i];
    mo[i] = mn;
    vo[i] = vn;
    po[i] = pp - u * lr;
  }
}
