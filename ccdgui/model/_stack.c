/* Compiled band reduction for the combine engine (ccdgui.model.combine).
 *
 * One call reduces one band of a stack whose values are all finite: a C-contiguous float32 cube of
 * n frames x P pixels. Pixels are taken LANES at a time into a block that stays in L1 cache; the block
 * is sorted along the frame axis by a sorting network (comparators given by the caller) as element-wise
 * min/max over the lanes, which the compiler turns into SIMD instructions; then median, spread, bounds,
 * the run of kept values and its statistic are computed per lane.
 *
 * Values beyond absolute thresholds (compared before scaling) become +inf, sort last and leave a pixel
 * m < n values; its statistics then run over those m (a scalar path per such pixel). With per-frame
 * weights an average or sum is sum(w * x) [/ sum(w)] over the kept values in frame order, from a copy of
 * the block taken before sorting.
 *
 * Every float operation is the one the numpy implementation in combine.py performs, in the same order
 * and in float32 (stored file values are decoded in double, as ccdgui.model.rows.Decoding does), so both
 * give identical results (build with floating-point contraction off).
 * The interpreter lock is released while a band is reduced, so two bands run on two cores.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(_MSC_VER)
#define restrict __restrict
#endif

#define LANES 64
#define MAX_FRAMES 64

/* Where the compiler can build one copy for AVX2 and one for any x86-64 and pick at load time. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__)
#define SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#define INLINE static inline __attribute__((always_inline))
#else
#define SIMD_CLONES
#define INLINE static inline
#endif

enum { METHOD_AVERAGE = 0, METHOD_MEDIAN = 1, METHOD_SUM = 2 };
enum { REJECT_NONE = 0, REJECT_SIGMA = 1, REJECT_MINMAX = 2 };

typedef struct {
    int method, reject, centre_is_mean, spread_is_std, minmax_low, minmax_high;
    float sigma_low, sigma_high, mad_to_sigma;
    int clipping, weighted;     /* thresholds given; weights given */
    float clip_low, clip_high;  /* values < clip_low or > clip_high are rejected (-inf / +inf: none) */
} Options;

/* How a frame's band is stored: native float32, or as in a FITS file (big-endian), decoded on loading
 * exactly as ccdgui.model.rows.Decoding does: (float)((double)stored * BSCALE + BZERO), multiplied then
 * added in double; floats with BSCALE 1 and BZERO 0 converted directly. */
typedef struct {
    char kind;       /* f native float32; F >f4, D >f8, h >i2, i >i4, l >i8, L >i8 of uint64 - 2**63, B u1 */
    double bscale, bzero;
    int single;      /* h/B with BSCALE 1 and a small integer BZERO: float32 arithmetic, provably the same */
    int has_blank;   /* an integer value meaning "no data" (BLANK): the band then has a NaN */
    long long blank;
    const float *offset;  /* NULL, or a float32 band subtracted after decoding (e.g. a master bias) */
} Decode;

typedef struct {
    int n;                     /* frames */
    Py_ssize_t npix;           /* pixels in the band */
    const unsigned char *rows[MAX_FRAMES];
    Decode decode[MAX_FRAMES];
    float scales[MAX_FRAMES];  /* applied to every value as it is loaded (1 = none) */
    float weights[MAX_FRAMES]; /* per-frame weights of an average or sum (when Options.weighted) */
    const int32_t *pairs;      /* sorting-network comparators (i, j): min to i, max to j */
    Py_ssize_t npairs;
    float *data;
    uint16_t *count;
} Band;

typedef float Block[MAX_FRAMES][LANES];

#include "_networks.h"  /* SORTS[n], MEDIANS[n]: the same networks, unrolled, for n <= UNROLLED_MAX */

INLINE void compare_exchange(float *restrict a, float *restrict b)
{
    for (int k = 0; k < LANES; k++) {
        float x = a[k], y = b[k];
        float low = y < x ? y : x, high = y < x ? x : y;
        a[k] = low;
        b[k] = high;
    }
}

static inline uint16_t swap16(uint16_t x) { return (uint16_t)((x >> 8) | (x << 8)); }
static inline uint32_t swap32(uint32_t x)
{
    return (x >> 24) | ((x >> 8) & 0xff00u) | ((x << 8) & 0xff0000u) | (x << 24);
}
static inline uint64_t swap64(uint64_t x)
{
    return ((uint64_t)swap32((uint32_t)x) << 32) | swap32((uint32_t)(x >> 32));
}

static int item_size(char kind)
{
    switch (kind) {
    case 'f': case 'F': case 'i': return 4;
    case 'D': case 'l': case 'L': return 8;
    case 'h': return 2;
    case 'B': return 1;
    default: return 0;
    }
}

/* Stored value -> physical float32, as rows.Decoding computes it. */
#define PHYSICAL(value) ((float)((double)(value) * bscale + bzero))

/* Values k of a stored band as float32; 1 if a BLANK value was met. */
INLINE int decode_values(const unsigned char *src, const Decode *d, float *dst, int lanes)
{
    int blank = 0;
    const double bscale = d->bscale, bzero = d->bzero;
    const int plain = bscale == 1.0 && bzero == 0.0;
    switch (d->kind) {
    case 'f':
        if (plain) {
            memcpy(dst, src, (size_t)lanes * sizeof(float));
        } else {
            for (int k = 0; k < lanes; k++) {
                float value;
                memcpy(&value, src + 4 * k, 4);
                dst[k] = PHYSICAL(value);
            }
        }
        break;
    case 'F':
        for (int k = 0; k < lanes; k++) {
            uint32_t bits;
            float value;
            memcpy(&bits, src + 4 * k, 4);
            bits = swap32(bits);
            memcpy(&value, &bits, 4);
            dst[k] = plain ? value : PHYSICAL(value);
        }
        break;
    case 'D':
        for (int k = 0; k < lanes; k++) {
            uint64_t bits;
            double value;
            memcpy(&bits, src + 8 * k, 8);
            bits = swap64(bits);
            memcpy(&value, &bits, 8);
            dst[k] = plain ? (float)value : PHYSICAL(value);
        }
        break;
    case 'h':
        if (d->single) {
            const float zero = (float)bzero;
            for (int k = 0; k < lanes; k++) {
                uint16_t bits;
                memcpy(&bits, src + 2 * k, 2);
                int16_t value = (int16_t)swap16(bits);
                blank |= d->has_blank && value == d->blank;
                dst[k] = (float)value + zero;
            }
            break;
        }
        for (int k = 0; k < lanes; k++) {
            uint16_t bits;
            memcpy(&bits, src + 2 * k, 2);
            int16_t value = (int16_t)swap16(bits);
            blank |= d->has_blank && value == d->blank;
            dst[k] = PHYSICAL(value);
        }
        break;
    case 'i':
        for (int k = 0; k < lanes; k++) {
            uint32_t bits;
            memcpy(&bits, src + 4 * k, 4);
            int32_t value = (int32_t)swap32(bits);
            blank |= d->has_blank && value == d->blank;
            dst[k] = PHYSICAL(value);
        }
        break;
    case 'l':
        for (int k = 0; k < lanes; k++) {
            uint64_t bits;
            memcpy(&bits, src + 8 * k, 8);
            int64_t value = (int64_t)swap64(bits);
            blank |= d->has_blank && value == d->blank;
            dst[k] = PHYSICAL(value);
        }
        break;
    case 'L':
        for (int k = 0; k < lanes; k++) {
            uint64_t bits;
            memcpy(&bits, src + 8 * k, 8);
            bits = swap64(bits);
            blank |= d->has_blank && (int64_t)bits == d->blank;
            dst[k] = PHYSICAL(bits ^ ((uint64_t)1 << 63));  /* uint64: exact, then rounded as numpy */
        }
        break;
    case 'B':
        if (d->single) {
            const float zero = (float)bzero;
            for (int k = 0; k < lanes; k++) {
                blank |= d->has_blank && src[k] == d->blank;
                dst[k] = (float)src[k] + zero;
            }
            break;
        }
        for (int k = 0; k < lanes; k++) {
            blank |= d->has_blank && src[k] == d->blank;
            dst[k] = PHYSICAL(src[k]);
        }
        break;
    }
    return blank;
}

/* The frame's prepared values: decoded, minus its offset band if it has one. */
INLINE int prepare_values(const Band *band, int i, Py_ssize_t base, float *dst, int lanes)
{
    const Decode *d = &band->decode[i];
    int blank = decode_values(band->rows[i] + base * item_size(d->kind), d, dst, lanes);
    if (d->offset != NULL) {
        const float *offset = d->offset + base;
        for (int k = 0; k < lanes; k++)
            dst[k] -= offset[k];
    }
    return blank;
}

/* Load lanes [base, base + lanes) of every frame, decoded and scaled; unused lanes get zeros. With
 * thresholds, a value beyond them (before scaling) becomes +inf and valid[k] counts lane k's others.
 * Returns 0 if a value is not finite (or is BLANK). */
INLINE int load_block(Block v, const Band *band, const Options *o, Py_ssize_t base, int lanes, int *valid)
{
    uint32_t special = 0;  /* any value whose exponent bits are all ones: inf or NaN */
    int32_t cut[LANES];
    for (int k = 0; k < LANES; k++)
        valid[k] = band->n;
    for (int i = 0; i < band->n; i++) {
        float *dst = v[i];
        float scale = band->scales[i];
        special |= (uint32_t)prepare_values(band, i, base, dst, lanes);
        if (o->clipping)
            for (int k = 0; k < lanes; k++)
                cut[k] = (dst[k] < o->clip_low) | (dst[k] > o->clip_high);
        if (scale != 1.0f)
            for (int k = 0; k < lanes; k++)
                dst[k] *= scale;
        for (int k = 0; k < lanes; k++) {
            uint32_t bits;
            memcpy(&bits, &dst[k], sizeof bits);
            special |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
        }
        if (o->clipping)
            for (int k = 0; k < lanes; k++) {
                valid[k] -= cut[k];
                dst[k] = cut[k] ? INFINITY : dst[k];
            }
        for (int k = lanes; k < LANES; k++)
            dst[k] = 0.0f;
    }
    return special == 0;
}

/* Per lane, the sum of rows start..stop-1 added in order (as numpy adds the rows of a sorted stack). */
INLINE void rows_sum(Block v, int start, int stop, float *out)
{
    for (int k = 0; k < LANES; k++)
        out[k] = v[start][k];
    for (int i = start + 1; i < stop; i++)
        for (int k = 0; k < LANES; k++)
            out[k] += v[i][k];
}

/* Per lane, the k-th smallest (1-based) |x - median| of the sorted values: deviations below the median
 * grow downwards, those above it upwards, so it is a selection from two sorted sequences. */
INLINE void kth_deviation(Block v, int n, const float *median, int kth, float *out)
{
    int half = n / 2, above = n - half;
    int first = kth - above > 0 ? kth - above : 0, last = half < kth ? half : kth;
    for (int k = 0; k < LANES; k++)
        out[k] = INFINITY;
    for (int i = first; i <= last; i++) {
        if (i == 0) {
            for (int k = 0; k < LANES; k++) {
                float candidate = v[half + kth - 1][k] - median[k];
                out[k] = candidate < out[k] ? candidate : out[k];
            }
        } else if (i == kth) {
            for (int k = 0; k < LANES; k++) {
                float candidate = median[k] - v[half - kth][k];
                out[k] = candidate < out[k] ? candidate : out[k];
            }
        } else {
            for (int k = 0; k < LANES; k++) {
                float a = median[k] - v[half - i][k], b = v[half + kth - i - 1][k] - median[k];
                float candidate = a > b ? a : b;
                out[k] = candidate < out[k] ? candidate : out[k];
            }
        }
    }
}

/* Centre and spread of each lane for sigma clipping (astropy sigma_clip with one pass). */
INLINE void clip_bounds(Block v, int n, const Options *o, const float *median, const float *total,
                        float *low, float *high)
{
    float mean[LANES], spread[LANES];
    for (int k = 0; k < LANES; k++)
        mean[k] = total[k] / (float)n;
    if (o->spread_is_std) {
        for (int k = 0; k < LANES; k++) {
            float d = v[0][k] - mean[k];
            spread[k] = d * d;
        }
        for (int i = 1; i < n; i++)
            for (int k = 0; k < LANES; k++) {
                float d = v[i][k] - mean[k];
                spread[k] += d * d;
            }
        for (int k = 0; k < LANES; k++)
            spread[k] = sqrtf(spread[k] / (float)n);
    } else {
        kth_deviation(v, n, median, n / 2 + 1, spread);
        if (n % 2 == 0) {
            float lower[LANES];
            kth_deviation(v, n, median, n / 2, lower);
            for (int k = 0; k < LANES; k++)
                spread[k] = (lower[k] + spread[k]) * 0.5f;
        }
        for (int k = 0; k < LANES; k++)
            spread[k] *= o->mad_to_sigma;
    }
    for (int k = 0; k < LANES; k++) {
        float centre = o->centre_is_mean ? mean[k] : median[k];
        low[k] = centre - o->sigma_low * spread[k];
        high[k] = centre + o->sigma_high * spread[k];
    }
}

/* The statistic of lane k's run of sorted values start..stop-1 (NaN and count 0 when empty). */
INLINE void run_statistic(Block v, int k, int start, int stop, int method, float *data, uint16_t *count)
{
    int kept = stop - start;
    *count = (uint16_t)(kept > 0 ? kept : 0);
    if (kept <= 0) {
        *data = NAN;
    } else if (method == METHOD_MEDIAN) {
        *data = (v[start + (kept - 1) / 2][k] + v[start + kept / 2][k]) * 0.5f;
    } else {
        float total = v[start][k];
        for (int i = start + 1; i < stop; i++)
            total += v[i][k];
        *data = method == METHOD_AVERAGE ? total / (float)kept : total;
    }
}

/* Scalar kth_deviation for one lane with m sorted values. */
static float lane_kth_deviation(Block v, int k, int m, float median, int kth)
{
    int half = m / 2, above = m - half;
    int first = kth - above > 0 ? kth - above : 0, last = half < kth ? half : kth;
    float best = INFINITY;
    for (int i = first; i <= last; i++) {
        float candidate;
        if (i == 0) {
            candidate = v[half + kth - 1][k] - median;
        } else if (i == kth) {
            candidate = median - v[half - kth][k];
        } else {
            float a = median - v[half - i][k], b = v[half + kth - i - 1][k] - median;
            candidate = a > b ? a : b;
        }
        best = candidate < best ? candidate : best;
    }
    return best;
}

/* Sigma-clip bounds of a lane left with 0 < m < n values (combine._short_bounds): a full lane's float32
 * operations over the first m sorted values, zeros added past m. */
static void lane_bounds(Block v, int n, int k, int m, const Options *o, float *low, float *high)
{
    float median = (v[(m - 1) / 2][k] + v[m / 2][k]) * 0.5f;
    float total = v[0][k], spread;
    for (int i = 1; i < n; i++)
        total += i < m ? v[i][k] : 0.0f;
    float mean = total / (float)m;
    if (o->spread_is_std) {
        float d = v[0][k] - mean;
        spread = d * d;
        for (int i = 1; i < n; i++) {
            d = v[i][k] - mean;
            spread += i < m ? d * d : 0.0f;
        }
        spread = sqrtf(spread / (float)m);
    } else {
        float upper = lane_kth_deviation(v, k, m, median, m / 2 + 1);
        float lower = m % 2 ? upper : lane_kth_deviation(v, k, m, median, m / 2);
        spread = (lower + upper) * 0.5f * o->mad_to_sigma;
    }
    float centre = o->centre_is_mean ? mean : median;
    *low = centre - o->sigma_low * spread;
    *high = centre + o->sigma_high * spread;
}

/* Every lane's run start..stop-1 of kept sorted values, lane k holding valid[k] values. */
INLINE void block_runs(Block v, int n, const Options *o, const int *valid, int *start, int *stop)
{
    if (o->reject != REJECT_SIGMA) {
        for (int k = 0; k < LANES; k++) {
            int m = valid[k];
            start[k] = o->reject == REJECT_MINMAX ? (o->minmax_low < m ? o->minmax_low : m) : 0;
            stop[k] = o->reject == REJECT_MINMAX ? (m - o->minmax_high > 0 ? m - o->minmax_high : 0) : m;
        }
        return;
    }
    float median[LANES], total[LANES], low[LANES], high[LANES];
    for (int k = 0; k < LANES; k++)
        median[k] = (v[(n - 1) / 2][k] + v[n / 2][k]) * 0.5f;
    rows_sum(v, 0, n, total);
    clip_bounds(v, n, o, median, total, low, high);
    for (int k = 0; k < LANES; k++) {
        int m = valid[k], below = 0, upto = 0;
        if (m < n) {  /* thresholded values: count over the m left */
            if (m > 0)
                lane_bounds(v, n, k, m, o, &low[k], &high[k]);
            for (int i = 0; i < m; i++) {
                below += v[i][k] < low[k];
                upto += v[i][k] <= high[k];
            }
        } else if (v[0][k] < low[k] || v[n - 1][k] > high[k]) {
            for (int i = 0; i < n; i++) {
                below += v[i][k] < low[k];
                upto += v[i][k] <= high[k];
            }
        } else {
            upto = n;
        }
        start[k] = below;
        stop[k] = upto;
    }
}

/* Weighted average or sum of each lane's kept values, in frame order from the unsorted copy u: frame i's
 * value is kept when its rank (values below it, plus equal values of earlier frames) lies in the run, as
 * numpy's stable argsort ranks them; only values equal to the run's ends need the rank. */
INLINE void weighted_statistic(Block v, Block u, int n, const float *w, const int *start, const int *stop,
                               int method, float *data, uint16_t *count, int lanes)
{
    float a[LANES], b[LANES], total[LANES], weight[LANES];
    int below_a[LANES], below_b[LANES], tie_a[LANES], tie_b[LANES];
    for (int k = 0; k < LANES; k++) {
        int kept = stop[k] - start[k];
        a[k] = kept > 0 ? v[start[k]][k] : NAN;
        b[k] = kept > 0 ? v[stop[k] - 1][k] : NAN;
        below_a[k] = below_b[k] = tie_a[k] = tie_b[k] = 0;
        total[k] = weight[k] = 0.0f;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < LANES; k++) {
            below_a[k] += u[i][k] < a[k];
            below_b[k] += u[i][k] < b[k];
        }
    for (int i = 0; i < n; i++) {
        float wi = w[i];
        for (int k = 0; k < LANES; k++) {
            float x = u[i][k];
            int at_a = x == a[k], at_b = (x == b[k]) & !at_a;
            int rank = at_a ? below_a[k] + tie_a[k] : below_b[k] + tie_b[k];
            tie_a[k] += at_a;
            tie_b[k] += at_b;
            int in_run = (rank >= start[k]) & (rank < stop[k]), inside = (a[k] < x) & (x < b[k]);
            int keep = at_a | at_b ? in_run : inside;
            total[k] += keep ? wi * x : 0.0f;
            weight[k] += keep ? wi : 0.0f;
        }
    }
    for (int k = 0; k < lanes; k++) {
        int kept = stop[k] - start[k];
        count[k] = (uint16_t)(kept > 0 ? kept : 0);
        data[k] = kept <= 0 ? NAN : method == METHOD_AVERAGE ? total[k] / weight[k] : total[k];
    }
}

INLINE void reduce_block(Block v, Block u, const Band *band, const Options *o, const int *valid, int short_any,
                         float *data, uint16_t *count, int lanes)
{
    int n = band->n;
    float median[LANES], total[LANES], low[LANES], high[LANES];
    if (short_any || o->weighted) {
        int start[LANES], stop[LANES];
        block_runs(v, n, o, valid, start, stop);
        if (o->weighted && o->method != METHOD_MEDIAN)
            weighted_statistic(v, u, n, band->weights, start, stop, o->method, data, count, lanes);
        else
            for (int k = 0; k < lanes; k++)
                run_statistic(v, k, start[k], stop[k], o->method, &data[k], &count[k]);
        return;
    }
    if (o->reject != REJECT_SIGMA) {  /* the same run for every pixel */
        int start = o->reject == REJECT_MINMAX ? (o->minmax_low < n ? o->minmax_low : n) : 0;
        int stop = o->reject == REJECT_MINMAX ? (n - o->minmax_high > 0 ? n - o->minmax_high : 0) : n;
        int kept = stop - start;
        if (kept <= 0 || o->method == METHOD_MEDIAN) {
            for (int k = 0; k < lanes; k++)
                run_statistic(v, k, start, stop, o->method, &data[k], &count[k]);
            return;
        }
        rows_sum(v, start, stop, total);
        for (int k = 0; k < lanes; k++) {
            data[k] = o->method == METHOD_AVERAGE ? total[k] / (float)kept : total[k];
            count[k] = (uint16_t)kept;
        }
        return;
    }
    for (int k = 0; k < LANES; k++)
        median[k] = (v[(n - 1) / 2][k] + v[n / 2][k]) * 0.5f;
    int need_total = o->method != METHOD_MEDIAN || o->centre_is_mean || o->spread_is_std;
    if (need_total)
        rows_sum(v, 0, n, total);
    clip_bounds(v, n, o, median, total, low, high);
    for (int k = 0; k < lanes; k++) {
        if (v[0][k] < low[k] || v[n - 1][k] > high[k]) {  /* some value is rejected: count them */
            int start = 0, stop = 0;
            for (int i = 0; i < n; i++) {
                start += v[i][k] < low[k];
                stop += v[i][k] <= high[k];
            }
            run_statistic(v, k, start, stop, o->method, &data[k], &count[k]);
        } else {
            data[k] = o->method == METHOD_MEDIAN ? median[k]
                      : o->method == METHOD_AVERAGE ? total[k] / (float)n : total[k];
            count[k] = (uint16_t)n;
        }
    }
}

/* The whole band, block by block (u: room for an unsorted copy when weighted); 0 if a value is not
 * finite (outputs then partly written). */
SIMD_CLONES static int reduce_blocks(const Band *band, const Options *o, Block v, Block u)
{
    Network unrolled = NULL;  /* else the caller's comparators, one row pass each */
    int plain_median = o->method == METHOD_MEDIAN && o->reject == REJECT_NONE && !o->clipping;
    int valid[LANES];
    if (band->n >= 2 && band->n <= UNROLLED_MAX)
        unrolled = (plain_median ? MEDIANS : SORTS)[band->n];
    for (Py_ssize_t base = 0; base < band->npix; base += LANES) {
        int lanes = band->npix - base < LANES ? (int)(band->npix - base) : LANES, short_any = 0;
        if (!load_block(v, band, o, base, lanes, valid))
            return 0;
        if (o->clipping)
            for (int k = 0; k < lanes; k++)
                short_any |= valid[k] < band->n;
        if (o->weighted)
            memcpy(u, v, (size_t)band->n * sizeof v[0]);
        if (unrolled != NULL)
            unrolled(v);
        else
            for (Py_ssize_t p = 0; p < band->npairs; p++)
                compare_exchange(v[band->pairs[2 * p]], v[band->pairs[2 * p + 1]]);
        reduce_block(v, u, band, o, valid, short_any, band->data + base, band->count + base, lanes);
    }
    return 1;
}

static int get_buffer(PyObject *object, Py_buffer *view, int writable, Py_ssize_t length, const char *what)
{
    if (PyObject_GetBuffer(object, view, writable ? PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS : PyBUF_C_CONTIGUOUS))
        return -1;
    if (length >= 0 && view->len != length) {
        PyErr_Format(PyExc_ValueError, "reduce_band: %s has %zd bytes, expected %zd", what, view->len,
                     length);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* decode: None (every row native float32) or one (kind, bscale, bzero, blank or None[, offset]) per
 * frame (bscale and bzero as doubles); an offset (a float32 buffer of the band's pixels) is held in ``offsets`` until released. */
static int parse_decode(PyObject *decode_object, Band *band, Py_buffer *offsets)
{
    for (int i = 0; i < band->n; i++)
        band->decode[i] = (Decode){'f', 1.0, 0.0, 0, 0, 0, NULL};
    if (decode_object == Py_None)
        return 0;
    PyObject *items = PySequence_Fast(decode_object, "reduce_band: decode must be a sequence");
    if (items == NULL)
        return -1;
    int failed = PySequence_Fast_GET_SIZE(items) != band->n;
    if (failed)
        PyErr_SetString(PyExc_ValueError, "reduce_band: one decode entry per frame");
    for (int i = 0; i < band->n && !failed; i++) {
        Decode *d = &band->decode[i];
        PyObject *blank, *offset = Py_None;
        const char *kind;
        failed = !PyArg_ParseTuple(PySequence_Fast_GET_ITEM(items, i), "sddO|O", &kind, &d->bscale,
                                   &d->bzero, &blank, &offset);
        if (failed)
            break;
        d->kind = kind[0];
        if (item_size(d->kind) == 0 || kind[1] != '\0') {
            PyErr_Format(PyExc_ValueError, "reduce_band: unknown stored kind %s", kind);
            failed = 1;
            break;
        }
        /* |value + BZERO| < 2**24: exact in float32 as in double (rows.Decoding's "single" mode) */
        d->single = (d->kind == 'h' || d->kind == 'B') && d->bscale == 1.0 && d->bzero == floor(d->bzero)
                    && fabs(d->bzero) <= 16777216.0 - 65536.0;
        if (blank != Py_None) {
            d->has_blank = 1;
            d->blank = PyLong_AsLongLong(blank);
            failed = d->blank == -1 && PyErr_Occurred();
        }
        if (!failed && offset != Py_None) {
            failed = get_buffer(offset, &offsets[i], 0, band->npix * (Py_ssize_t)sizeof(float), "an offset");
            d->offset = failed ? NULL : offsets[i].buf;
        }
    }
    Py_DECREF(items);
    return failed ? -1 : 0;
}


/* A threshold: None (none: -inf / +inf) or a number, as the float32 limit that answers each comparison
 * of a float32 value as a comparison in double would: the smallest float32 >= a lower limit, the largest
 * <= an upper one (combine._clip_limits). */
static int clip_limit(PyObject *object, int upper, float *limit)
{
    if (object == Py_None) {
        *limit = upper ? INFINITY : -INFINITY;
        return 0;
    }
    double value = PyFloat_AsDouble(object);
    if (value == -1.0 && PyErr_Occurred())
        return -1;
    if (isnan(value)) {
        PyErr_SetString(PyExc_ValueError, "reduce_band: a clip limit is NaN");
        return -1;
    }
    float single = fabs(value) > FLT_MAX ? (value > 0 ? INFINITY : -INFINITY) : (float)value;
    if (upper ? (double)single > value : (double)single < value)
        single = nextafterf(single, upper ? -INFINITY : INFINITY);
    *limit = single;
    return 0;
}

/* reduce_band(rows, scales, decode, network, data, count, method, reject, centre_is_mean,
 *             spread_is_std, sigma_low, sigma_high, minmax_low, minmax_high, mad_to_sigma
 *             [, weights, clip_min, clip_max]) -> bool
 * rows: a sequence of n buffers of the band (one per frame, as many pixels as data), native float32
 * unless ``decode`` says how each is stored (and which float32 band to subtract from it); scales: None or a float32 buffer of n factors applied
 * after decoding; network: int32 comparator pairs; data (float32) and count (uint16): outputs;
 * weights: None or a float32 buffer of n (an average or sum is then weighted); clip_min, clip_max: None
 * or numbers, compared with the values before scaling.
 * False when a value is not finite (or BLANK): the caller then takes the general path. */
static PyObject *reduce_band(PyObject *self, PyObject *args)
{
    PyObject *rows_object, *scales_object, *decode_object, *network_object, *data_object, *count_object;
    PyObject *weights_object = Py_None, *clip_min = Py_None, *clip_max = Py_None;
    Options o;
    if (!PyArg_ParseTuple(args, "OOOOOOiiiiffiif|OOO", &rows_object, &scales_object, &decode_object,
                          &network_object, &data_object, &count_object, &o.method, &o.reject,
                          &o.centre_is_mean, &o.spread_is_std, &o.sigma_low, &o.sigma_high, &o.minmax_low,
                          &o.minmax_high, &o.mad_to_sigma, &weights_object, &clip_min, &clip_max))
        return NULL;
    if (o.method < METHOD_AVERAGE || o.method > METHOD_SUM || o.reject < REJECT_NONE || o.reject > REJECT_MINMAX
        || o.minmax_low < 0 || o.minmax_high < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "reduce_band: unknown method or rejection, or a negative min/max count");
        return NULL;
    }
    if (clip_limit(clip_min, 0, &o.clip_low) || clip_limit(clip_max, 1, &o.clip_high))
        return NULL;
    o.clipping = o.clip_low > -INFINITY || o.clip_high < INFINITY;
    o.weighted = weights_object != Py_None;
    PyObject *rows = PySequence_Fast(rows_object, "reduce_band: rows must be a sequence");
    if (rows == NULL)
        return NULL;
    Band band;
    Py_buffer views[MAX_FRAMES], offsets[MAX_FRAMES], scales = {0}, weights = {0}, network = {0}, data = {0},
              count = {0};
    for (int i = 0; i < MAX_FRAMES; i++)
        offsets[i].obj = NULL;
    int held = 0, finite = -2;
    band.n = (int)PySequence_Fast_GET_SIZE(rows);
    if (band.n < 1 || band.n > MAX_FRAMES) {
        PyErr_Format(PyExc_ValueError, "reduce_band: 1 to %d frames, not %d", MAX_FRAMES, band.n);
        goto done;
    }
    if (get_buffer(data_object, &data, 1, -1, "data"))
        goto done;
    band.npix = data.len / (Py_ssize_t)sizeof(float);
    if (get_buffer(count_object, &count, 1, band.npix * (Py_ssize_t)sizeof(uint16_t), "count"))
        goto done;
    if (get_buffer(network_object, &network, 0, -1, "network"))
        goto done;
    if (parse_decode(decode_object, &band, offsets))
        goto done;
    for (; held < band.n; held++)
        if (get_buffer(PySequence_Fast_GET_ITEM(rows, held), &views[held], 0,
                       band.npix * item_size(band.decode[held].kind), "a row"))
            goto done;
    if (scales_object != Py_None
        && get_buffer(scales_object, &scales, 0, band.n * (Py_ssize_t)sizeof(float), "scales"))
        goto done;
    if (o.weighted && get_buffer(weights_object, &weights, 0, band.n * (Py_ssize_t)sizeof(float), "weights"))
        goto done;
    for (int i = 0; i < band.n; i++) {
        band.rows[i] = views[i].buf;
        band.scales[i] = scales.obj ? ((const float *)scales.buf)[i] : 1.0f;
        band.weights[i] = weights.obj ? ((const float *)weights.buf)[i] : 1.0f;
    }
    band.pairs = network.buf;
    band.npairs = network.len / (Py_ssize_t)(2 * sizeof(int32_t));
    for (Py_ssize_t p = 0; p < 2 * band.npairs; p++)
        if (band.pairs[p] < 0 || band.pairs[p] >= band.n || (p % 2 && band.pairs[p] == band.pairs[p - 1])) {
            PyErr_SetString(PyExc_ValueError,
                            "reduce_band: network refers to a frame that is not there (or pairs one with itself)");
            goto done;
        }
    band.data = data.buf;
    band.count = count.buf;
    Py_BEGIN_ALLOW_THREADS
    Block *v = PyMem_RawMalloc((o.weighted ? 2 : 1) * sizeof(Block));
    finite = v == NULL ? -1 : reduce_blocks(&band, &o, v[0], o.weighted ? v[1] : NULL);
    PyMem_RawFree(v);
    Py_END_ALLOW_THREADS
    if (finite == -1)
        PyErr_NoMemory();
done:
    for (int i = 0; i < held; i++)
        PyBuffer_Release(&views[i]);
    for (int i = 0; i < MAX_FRAMES; i++)
        if (offsets[i].obj)
            PyBuffer_Release(&offsets[i]);
    if (scales.obj)
        PyBuffer_Release(&scales);
    if (weights.obj)
        PyBuffer_Release(&weights);
    if (network.obj)
        PyBuffer_Release(&network);
    if (count.obj)
        PyBuffer_Release(&count);
    if (data.obj)
        PyBuffer_Release(&data);
    Py_DECREF(rows);
    return finite >= 0 ? PyBool_FromLong(finite) : NULL;
}

static PyMethodDef methods[] = {
    {"reduce_band", reduce_band, METH_VARARGS,
     "Reduce one band of a float32 stack (a row buffer per frame) into data and count; False if a "
     "value is not finite."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_stack", NULL, -1, methods};

PyMODINIT_FUNC PyInit__stack(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "MAX_FRAMES", MAX_FRAMES) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
