//! Exact inner-product scan without per-item heap work, plus the dot kernel and the bounded top-k
//! heap the graph search shares.
//!
//! Scores are `dot + bias` per row, with an AVX kernel when the CPU has it (detected at run time;
//! the crate is built for baseline x86-64) or the portable [`dot`]. The AVX kernel scores eight
//! rows per group and reduces them together (a transpose instead of eight horizontal sums), with
//! the query in registers for 16/32/48/64-d. Every kernel rounds exactly like [`dot`] (same lanes,
//! same additions, no FMA), so scores are bit-identical to
//! [`VectorIndex::score`](super::VectorIndex::score) and to the former heap scan.
//!
//! Catalogues below [`BLOCKED_FROM_BYTES`] (16 MiB of vectors) — [`scan_whole`]:
//! 1. Score every item into a reused per-thread buffer with the detected kernel.
//! 2. Estimate a threshold from an even-stride sample of the non-excluded scores (the rank that
//!    leaves about `k` plus three standard deviations of items above it).
//! 3. Collect, without a branch per item, the ids scoring at least the threshold, skipping the
//!    excluded ids (a sorted list) by splitting the id range around them: `O(|excluded|)`, no
//!    lookup per item. Only these candidates (~1.25 k) get a `u64` key, whose unsigned order is the
//!    result order (score by `f32::total_cmp`, ties to the lower id), and meet `allow`.
//! 4. `select_nth_unstable` keeps the best `k` keys and a sort of those gives the list. If fewer
//!    than `k` candidates passed (an unlucky sample, or an `allow` rejecting most items), step 3
//!    runs again without a threshold, so the result is always the exact top `k`.
//!
//! Larger catalogues — [`scan_blocked`], one pass over the vectors: the sampled items are scored
//! directly for the threshold, then each block of [`BLOCK`] items is scored into a small buffer
//! and its candidates collected at once (steps 3–4 per block; if candidates pile up past
//! `4k + 2 × BLOCK`, the best `k` are kept and the threshold rises to the worst of them). This
//! path uses the portable kernel: once the vectors come from DRAM, its row-by-row reads ran at
//! the old heap scan's speed while the AVX kernel's eight-row groups were 30–40 % slower
//! (100,000 × 64-d, k = 200, 2 shared cores: heap 1.4–1.5 ms, AVX 1.9–2.1 ms whole or blocked,
//! portable blocked 1.5 ms; software prefetch and memory-order row reads did not help). Below the
//! switch the AVX whole-buffer scan stays (2,000 × 64-d: 10 µs vs 56 µs for the heap scan).
//!
//! Deadline: with a bounded [`Deadline`], both layouts check it every [`CHECK_EVERY`] items scored
//! (one clock read per few thousand items, none for catalogues smaller than that) and, once it has
//! passed, stop and select from the items scored so far (a prefix of the ids), reporting
//! [`Coverage::Cut`]. Offline ([`Deadline::NONE`]) every item is scored.
//!
//! Memory: 8 bytes per item of the largest small catalogue scanned, 16 KiB per block for large
//! ones, plus the candidate keys, reused per thread; nothing is allocated per query once the
//! buffers have grown.

use std::cmp::Ordering;

use super::Coverage;
use crate::deadline::Deadline;

/// Items scored between two looks at the deadline: a clock read (~25 ns) per 4,096 items is far
/// below 1% of their scoring, and at 64 dimensions 4,096 items take ~30 µs, so a scan overruns its
/// deadline by about that.
pub(crate) const CHECK_EVERY: usize = 4_096;

/// Independent accumulators in [`dot`]: enough to hide add latency with SSE2 (4 registers) or AVX (2).
const LANES: usize = 16;

/// Dot product over the common prefix of `a` and `b`. Sixteen independent accumulators let LLVM
/// keep several vector registers in flight instead of one serial chain of additions.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let len = a.len().min(b.len());
    let (a_chunks, a_tail) = a[..len].as_chunks::<LANES>();
    let (b_chunks, b_tail) = b[..len].as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in a_tail.iter().zip(b_tail) {
        tail += x * y;
    }
    reduce(acc) + tail
}

/// Pairwise sum of the accumulators (vectorises to a few shuffles).
#[inline]
fn reduce(acc: [f32; LANES]) -> f32 {
    let mut half = [0.0f32; LANES / 2];
    for i in 0..LANES / 2 {
        half[i] = acc[i] + acc[i + LANES / 2];
    }
    let mut quarter = [0.0f32; LANES / 4];
    for i in 0..LANES / 4 {
        quarter[i] = half[i] + half[i + LANES / 4];
    }
    (quarter[0] + quarter[2]) + (quarter[1] + quarter[3])
}

/// The dot kernels the scan can use; [`Kernel::detect`] picks the best the CPU supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// [`dot`] per row, as LLVM vectorises it for the build target.
    Portable,
    /// 256-bit AVX, two registers of eight accumulators; only constructed when the CPU has AVX.
    #[cfg(target_arch = "x86_64")]
    Avx,
}

impl Kernel {
    /// The fastest kernel this CPU runs (the detection result is cached by std).
    #[inline]
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx") {
            return Self::Avx;
        }
        Self::Portable
    }

    /// Every kernel this CPU can run, for tests comparing them.
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Self> {
        let mut all = vec![Self::Portable];
        if Self::detect() != Self::Portable {
            all.push(Self::detect());
        }
        all
    }

    /// [`dot`] of one pair, bit-identical in every kernel (the graph walk scores rows that are
    /// not contiguous).
    #[inline]
    pub(crate) fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Self::Portable => dot(a, b),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::Avx` is only constructed by `detect` after
            // `is_x86_feature_detected!("avx")` returned true, so this CPU executes AVX.
            Self::Avx => unsafe { avx::dot(a, b) },
        }
    }

    /// `out[j] = dot(query, row j of rows)` for the `out.len()` rows of `rows` (`dim` floats each).
    #[inline]
    pub(crate) fn score_rows(self, query: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
        match self {
            Self::Portable => {
                for (s, row) in out.iter_mut().zip(rows.chunks_exact(dim)) {
                    *s = dot(query, row);
                }
            }
            #[cfg(target_arch = "x86_64")]
            Self::Avx => {
                // SAFETY: `Kernel::Avx` is only constructed by `detect` after
                // `is_x86_feature_detected!("avx")` returned true, so this CPU executes AVX.
                unsafe { avx::score_rows(query, rows, dim, out) }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::{
        __m256, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehl_ps, _mm_shuffle_ps,
        _mm256_add_ps, _mm256_castps256_ps128, _mm256_extractf128_ps, _mm256_loadu_ps,
        _mm256_mul_ps, _mm256_permute2f128_ps, _mm256_setzero_ps, _mm256_shuffle_ps,
        _mm256_storeu_ps,
    };

    use super::LANES;

    /// Items per group: one AVX register of final scores.
    const GROUP: usize = 8;
    /// Row scored into slot `s` of a group, chosen so that [`reduce8`] yields the scores in item order.
    const SLOT: [usize; GROUP] = [0, 4, 1, 5, 2, 6, 3, 7];

    /// [`super::Kernel::score_rows`] with AVX: groups of eight rows share one transposed reduction
    /// (about 4 instructions per item instead of 9); the last `< 8` rows go one at a time.
    #[target_feature(enable = "avx")]
    pub(super) fn score_rows(query: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
        if query.len() == dim && dim.is_multiple_of(LANES) {
            match dim / LANES {
                1 => return score_rows_fixed::<1>(query, rows, out),
                2 => return score_rows_fixed::<2>(query, rows, out),
                3 => return score_rows_fixed::<3>(query, rows, out),
                4 => return score_rows_fixed::<4>(query, rows, out),
                _ => {}
            }
        }
        let len = query.len().min(dim);
        let (q_chunks, q_tail) = query[..len].as_chunks::<LANES>();
        let mut groups = out.chunks_exact_mut(GROUP);
        let mut row_groups = rows.chunks_exact(GROUP * dim);
        for (scores, group) in (&mut groups).zip(&mut row_groups) {
            let mut halves = [_mm256_setzero_ps(); GROUP];
            let mut tails = [0.0f32; GROUP];
            for (s, half) in halves.iter_mut().enumerate() {
                let row = group.get(SLOT[s] * dim..SLOT[s] * dim + len).unwrap_or(&[]);
                let (r_chunks, r_tail) = row.as_chunks::<LANES>();
                *half = accumulate(q_chunks, r_chunks);
                let mut tail = 0.0f32;
                for (x, y) in q_tail.iter().zip(r_tail) {
                    tail += x * y;
                }
                tails[SLOT[s]] = tail;
            }
            let sums = _mm256_add_ps(reduce8(halves), load8(&tails));
            if let Ok(scores) = <&mut [f32; GROUP]>::try_from(scores) {
                // SAFETY: `scores` is exactly eight floats; `storeu` has no alignment requirement.
                unsafe { _mm256_storeu_ps(scores.as_mut_ptr(), sums) };
            }
        }
        let rest = groups.into_remainder();
        for (s, row) in rest
            .iter_mut()
            .zip(row_groups.remainder().chunks_exact(dim))
        {
            *s = dot(query, row);
        }
    }

    /// [`score_rows`] for `dim = CHUNKS × 16` (no tail), the query held in registers and the
    /// chunk loop unrolled.
    #[target_feature(enable = "avx")]
    fn score_rows_fixed<const CHUNKS: usize>(query: &[f32], rows: &[f32], out: &mut [f32]) {
        let dim = CHUNKS * LANES;
        let (q_chunks, _) = query.as_chunks::<LANES>();
        let mut q = [[_mm256_setzero_ps(); 2]; CHUNKS];
        for (q, chunk) in q.iter_mut().zip(q_chunks) {
            *q = [load::<0>(chunk), load::<8>(chunk)];
        }
        let mut groups = out.chunks_exact_mut(GROUP);
        let mut row_groups = rows.chunks_exact(GROUP * dim);
        for (scores, group) in (&mut groups).zip(&mut row_groups) {
            let mut halves = [_mm256_setzero_ps(); GROUP];
            for (s, half) in halves.iter_mut().enumerate() {
                let row = group.get(SLOT[s] * dim..(SLOT[s] + 1) * dim).unwrap_or(&[]);
                let (r_chunks, _) = row.as_chunks::<LANES>();
                let mut lo = _mm256_setzero_ps();
                let mut hi = _mm256_setzero_ps();
                for ([q_lo, q_hi], y) in q.iter().zip(r_chunks) {
                    lo = _mm256_add_ps(lo, _mm256_mul_ps(*q_lo, load::<0>(y)));
                    hi = _mm256_add_ps(hi, _mm256_mul_ps(*q_hi, load::<8>(y)));
                }
                *half = _mm256_add_ps(lo, hi);
            }
            // `+ tail` of `super::dot`, with the empty tail's 0.0.
            let sums = _mm256_add_ps(reduce8(halves), _mm256_setzero_ps());
            if let Ok(scores) = <&mut [f32; GROUP]>::try_from(scores) {
                // SAFETY: `scores` is exactly eight floats; `storeu` has no alignment requirement.
                unsafe { _mm256_storeu_ps(scores.as_mut_ptr(), sums) };
            }
        }
        let rest = groups.into_remainder();
        for (s, row) in rest
            .iter_mut()
            .zip(row_groups.remainder().chunks_exact(dim))
        {
            *s = dot(query, row);
        }
    }

    /// `acc[i] + acc[i + 8]` of [`super::dot`]'s sixteen accumulators, as one register: lane `i`
    /// of `lo` is accumulator `i`, lane `i` of `hi` accumulator `i + 8`, each a multiply then an add
    /// from 0 per chunk, as there.
    #[inline]
    #[target_feature(enable = "avx")]
    fn accumulate(a: &[[f32; LANES]], b: &[[f32; LANES]]) -> __m256 {
        let mut lo = _mm256_setzero_ps();
        let mut hi = _mm256_setzero_ps();
        for (x, y) in a.iter().zip(b) {
            lo = _mm256_add_ps(lo, _mm256_mul_ps(load::<0>(x), load::<0>(y)));
            hi = _mm256_add_ps(hi, _mm256_mul_ps(load::<8>(x), load::<8>(y)));
        }
        _mm256_add_ps(lo, hi)
    }

    /// The rest of [`super::reduce`] for eight items at once: `halves[s]` holds the eight `half`
    /// values of the row in slot `s`; lane `j` of the result is `(q0 + q2) + (q1 + q3)` of row `j`,
    /// where `q_i = half[i] + half[i + 4]` (the same additions of the same operands).
    #[inline]
    #[target_feature(enable = "avx")]
    fn reduce8(h: [__m256; GROUP]) -> __m256 {
        // [q of slot a | q of slot b]: low halves plus high halves.
        let quarters = |a: __m256, b: __m256| {
            _mm256_add_ps(
                _mm256_permute2f128_ps::<0x20>(a, b),
                _mm256_permute2f128_ps::<0x31>(a, b),
            )
        };
        let (q01, q23) = (quarters(h[0], h[1]), quarters(h[2], h[3]));
        let (q45, q67) = (quarters(h[4], h[5]), quarters(h[6], h[7]));
        // [q0 + q2, q1 + q3] of slots (a, c | b, d) from [a | b] and [c | d].
        let pairs = |ab: __m256, cd: __m256| {
            _mm256_add_ps(
                _mm256_shuffle_ps::<0b01_00_01_00>(ab, cd),
                _mm256_shuffle_ps::<0b11_10_11_10>(ab, cd),
            )
        };
        let (p0213, p4657) = (pairs(q01, q23), pairs(q45, q67));
        // Lanes: slots 0, 2, 4, 6 | 1, 3, 5, 7, which `SLOT` maps to rows 0..8 in order.
        _mm256_add_ps(
            _mm256_shuffle_ps::<0b10_00_10_00>(p0213, p4657),
            _mm256_shuffle_ps::<0b11_01_11_01>(p0213, p4657),
        )
    }

    #[inline]
    #[target_feature(enable = "avx")]
    fn load8(values: &[f32; GROUP]) -> __m256 {
        // SAFETY: eight floats in bounds; `loadu` has no alignment requirement.
        unsafe { _mm256_loadu_ps(values.as_ptr()) }
    }

    /// Loads eight floats starting at `chunk[OFFSET]`.
    #[inline]
    #[target_feature(enable = "avx")]
    fn load<const OFFSET: usize>(chunk: &[f32; LANES]) -> __m256 {
        const { assert!(OFFSET + 8 <= LANES) };
        // SAFETY: `chunk` holds LANES floats and OFFSET + 8 <= LANES (checked at compile time), so
        // the eight floats read are in bounds; `loadu` has no alignment requirement.
        unsafe { _mm256_loadu_ps(chunk.as_ptr().add(OFFSET)) }
    }

    /// [`super::dot`] for one row with the same rounding: the accumulators of [`accumulate`], then
    /// `half[i] + half[i + 4]`, `(q0 + q2) + (q1 + q3)`, and the scalar tail.
    #[inline]
    #[target_feature(enable = "avx")]
    pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
        let len = a.len().min(b.len());
        let (a_chunks, a_tail) = a[..len].as_chunks::<LANES>();
        let (b_chunks, b_tail) = b[..len].as_chunks::<LANES>();
        let half = accumulate(a_chunks, b_chunks);
        let mut tail = 0.0f32;
        for (x, y) in a_tail.iter().zip(b_tail) {
            tail += x * y;
        }
        let quarter = _mm_add_ps(
            _mm256_castps256_ps128(half),
            _mm256_extractf128_ps::<1>(half),
        );
        // [q0 + q2, q1 + q3, ..], then lane 0 + lane 1.
        let pairs = _mm_add_ps(quarter, _mm_movehl_ps(quarter, quarter));
        let sum = _mm_add_ss(pairs, _mm_shuffle_ps::<0b01>(pairs, pairs));
        _mm_cvtss_f32(sum) + tail
    }
}

/// The sort key of `(score, id)`: a larger key ranks higher (higher score by `f32::total_cmp`,
/// then lower id). Never 0 for a real item, since ids are below `u32::MAX`.
#[inline]
pub(crate) fn key(score: f32, id: u32) -> u64 {
    let bits = score.to_bits();
    // Negative: flip every bit (larger magnitude sorts lower); positive: set the sign bit.
    let ordered = bits ^ ((((bits as i32) >> 31) as u32) | 0x8000_0000);
    (u64::from(ordered) << 32) | u64::from(!id)
}

/// Inverse of [`key`]: `(id, score)`, the score bit for bit.
#[inline]
pub(crate) fn unkey(key: u64) -> (u32, f32) {
    let ordered = (key >> 32) as u32;
    let bits = if ordered & 0x8000_0000 != 0 {
        ordered ^ 0x8000_0000
    } else {
        !ordered
    };
    (!(key as u32), f32::from_bits(bits))
}

/// Reusable buffers of [`scan`], kept per thread: the scores and candidate ids of the whole
/// catalogue (small catalogues) or of one block (large ones), the sample and the candidate keys.
#[derive(Debug, Default)]
pub(crate) struct ScanScratch {
    scores: Vec<f32>,
    ids: Vec<u32>,
    sample: Vec<u32>,
    keys: Vec<u64>,
}

/// The order-preserving `u32` of a score (the high half of its [`key`]).
#[inline]
fn ordered(score: f32) -> u32 {
    (key(score, 0) >> 32) as u32
}

/// Items sampled to estimate the selection threshold.
const SAMPLE: usize = 256;

/// Catalogues of at least this many bytes of vectors (half the 32 MiB L3 of the machine measured,
/// which others share) are scanned block by block with the portable kernel ([`scan_blocked`]);
/// smaller ones score everything into one buffer with the detected kernel ([`scan_whole`]).
pub(crate) const BLOCKED_FROM_BYTES: usize = 16 << 20;

/// Whether [`scan`] streams a catalogue of `floats` vector floats in blocks.
#[inline]
pub(crate) fn is_large(floats: usize) -> bool {
    floats.saturating_mul(size_of::<f32>()) >= BLOCKED_FROM_BYTES
}

/// Items per block of [`scan_blocked`]: 8 KiB of scores and 8 KiB of candidate ids, resident in
/// L1/L2 while the block's vectors stream past once (1,024 to 16,384 measured alike within noise;
/// 8,192 was slowest).
pub(crate) const BLOCK: usize = 2_048;

/// Every `stride`-th item from 0, the sample positions (`None` when the catalogue is too small to
/// be worth a threshold).
#[inline]
fn sample_stride(n: usize) -> Option<usize> {
    let stride = n / SAMPLE;
    (stride >= 2).then_some(stride)
}

/// A score `t` such that very likely at least `k` eligible items score `>= t` (and not many
/// more): the matching rank of `sample` (ordered scores of the non-excluded items among every
/// `stride`-th of `n`), with three standard deviations of margin. `None` when a threshold would
/// not cut much.
fn sample_threshold(sample: &mut [u32], n: usize, excluded: &[u32], k: usize) -> Option<f32> {
    let n_excluded = excluded.partition_point(|&e| (e as usize) < n);
    let eligible = n.saturating_sub(n_excluded).max(1) as f64;
    let m = sample.len() as f64;
    let p = (k as f64 / eligible).min(1.0);
    let rank = (m * p + 3.0 * (m * p * (1.0 - p)).sqrt()).ceil() as usize + 1;
    if rank >= sample.len() / 2 {
        return None;
    }
    let (_, &mut t, _) = sample.select_nth_unstable_by(rank - 1, |a, b| b.cmp(a));
    // Back from the ordered form to the score.
    Some(unkey(u64::from(t) << 32).1)
}

/// Pushes `ordered(score)` of the non-excluded items at `stride` positions (`0, stride, ..`) as
/// `score_at` gives them.
fn fill_sample(
    n: usize,
    stride: usize,
    excluded: &[u32],
    sample: &mut Vec<u32>,
    mut score_at: impl FnMut(usize) -> f32,
) {
    sample.clear();
    let mut excluded_iter = excluded.iter().copied().peekable();
    for i in (0..n).step_by(stride) {
        while excluded_iter.next_if(|&e| (e as usize) < i).is_some() {}
        if excluded_iter.peek() != Some(&(i as u32)) {
            sample.push(ordered(score_at(i)));
        }
    }
}

/// The lowest key a threshold admits: every item scoring at least `threshold` (by
/// `f32::total_cmp`) whatever its id.
#[inline]
fn min_key_of(threshold: f32) -> u64 {
    u64::from(ordered(threshold)) << 32
}

/// Appends to `keys`, in id order, the keys `>= min_key` that pass `allow` of items `base..` (with
/// `scores` theirs) outside `excluded` (sorted, all ids). `ids` is scratch.
fn collect(
    scores: &[f32],
    base: usize,
    excluded: &[u32],
    min_key: u64,
    allow: &impl Fn(u32) -> bool,
    ids: &mut Vec<u32>,
    keys: &mut Vec<u64>,
) {
    let n = scores.len();
    // A pre-filter on the score alone; `min_key = 0` gives a NaN, which admits everything.
    let threshold = unkey(min_key).1;
    ids.resize(n, 0);
    let mut len = 0;
    let mut start = 0;
    let first = excluded.partition_point(|&e| (e as usize) < base);
    let segments = excluded[first..]
        .iter()
        .map(|&e| e as usize - base)
        .take_while(|&e| e < n)
        .chain([n]);
    for end in segments {
        if end < start {
            continue; // a duplicate id
        }
        // Branch-free: write every id, advance past it if it may pass. `!(s < t)` is a superset
        // of the exact test below (it also admits NaN and -0.0 against 0.0).
        for (j, &s) in scores.iter().enumerate().take(end).skip(start) {
            if let Some(slot) = ids.get_mut(len) {
                *slot = (base + j) as u32;
            }
            // Intended: unordered (NaN) passes, so the exact key test decides.
            #[allow(clippy::neg_cmp_op_on_partial_ord)]
            let may_pass = !(s < threshold);
            len += usize::from(may_pass);
        }
        start = end + 1;
    }
    for &id in &ids[..len.min(n)] {
        let score = scores.get(id as usize - base).copied().unwrap_or(f32::NAN);
        let key = key(score, id);
        if key >= min_key && allow(id) {
            keys.push(key);
        }
    }
}

/// Keeps the best `k` of `keys` (`k >= 1`), in no particular order.
#[inline]
fn keep_best(keys: &mut Vec<u64>, k: usize) {
    if keys.len() > k {
        keys.select_nth_unstable_by(k - 1, |a, b| b.cmp(a));
        keys.truncate(k);
    }
}

/// Top-`k` items by `dot(query, row) + bias` among those not in `excluded` (sorted ascending;
/// duplicates allowed) with `allow(id)`, best first, appended to `out`. `allow` is only called for
/// items scoring at least the sampled threshold (all eligible ones when that leaves fewer than `k`).
/// Past `deadline` the scan stops and answers from the items scored so far ([`Coverage::Cut`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn scan(
    vectors: &[f32],
    bias: Option<&[f32]>,
    dim: usize,
    query: &[f32],
    k: usize,
    excluded: &[u32],
    allow: &impl Fn(u32) -> bool,
    kernel: Kernel,
    deadline: Deadline,
    scratch: &mut ScanScratch,
    out: &mut Vec<(u32, f32)>,
) -> Coverage {
    // Above the switch, the portable kernel: its row-by-row reads beat the AVX kernel's
    // eight-row groups once the vectors come from DRAM (measured, see the module doc).
    let (block, kernel) = if is_large(vectors.len()) {
        (Some(BLOCK), Kernel::Portable)
    } else {
        (None, kernel)
    };
    scan_with(
        vectors, bias, dim, query, k, excluded, allow, kernel, block, deadline, scratch, out,
    )
}

/// [`scan`] with the layout chosen by the caller: `block = None` scores the whole catalogue into
/// one buffer ([`scan_whole`]), `Some(b)` streams it in blocks of `b` items ([`scan_blocked`]).
/// The result is the same bit for bit either way.
#[allow(clippy::too_many_arguments)]
pub(crate) fn scan_with(
    vectors: &[f32],
    bias: Option<&[f32]>,
    dim: usize,
    query: &[f32],
    k: usize,
    excluded: &[u32],
    allow: &impl Fn(u32) -> bool,
    kernel: Kernel,
    block: Option<usize>,
    deadline: Deadline,
    scratch: &mut ScanScratch,
    out: &mut Vec<(u32, f32)>,
) -> Coverage {
    if dim == 0 || k == 0 {
        return Coverage::Complete;
    }
    let n = vectors.len() / dim;
    let k = k.min(n);
    if k == 0 {
        return Coverage::Complete;
    }
    let items = Items {
        vectors: &vectors[..n * dim],
        bias,
        dim,
        query,
        kernel,
    };
    scratch.keys.clear();
    let coverage = match block {
        Some(block) => scan_blocked(&items, k, excluded, allow, block.max(1), deadline, scratch),
        None => scan_whole(&items, k, excluded, allow, deadline, scratch),
    };
    let keys = &mut scratch.keys;
    keep_best(keys, k);
    keys.sort_unstable_by(|a, b| b.cmp(a));
    out.extend(keys.iter().map(|&key| unkey(key)));
    coverage
}

/// What the scan scores: `n = vectors.len() / dim` rows against `query`.
struct Items<'a> {
    vectors: &'a [f32],
    bias: Option<&'a [f32]>,
    dim: usize,
    query: &'a [f32],
    kernel: Kernel,
}

impl Items<'_> {
    /// `out[j]` = score of item `base + j` (`dot + bias`, no addition without a bias).
    #[inline]
    fn score(&self, base: usize, out: &mut [f32]) {
        let rows = self
            .vectors
            .get(base * self.dim..(base + out.len()) * self.dim)
            .unwrap_or(&[]);
        self.kernel.score_rows(self.query, rows, self.dim, out);
        if let Some(bias) = self.bias {
            for (s, b) in out.iter_mut().zip(bias.get(base..).unwrap_or(&[])) {
                *s += b;
            }
        }
    }
}

/// Scores items `0..scores.len()` into `scores`, [`CHECK_EVERY`] at a time with a look at
/// `deadline` in between; returns how many were scored (all of them unless the deadline passed).
/// Each row's score does not depend on the chunking, so a complete pass equals one call.
fn score_prefix(items: &Items<'_>, scores: &mut [f32], deadline: Deadline) -> usize {
    let n = scores.len();
    if !deadline.is_bounded() || n <= CHECK_EVERY {
        items.score(0, scores);
        return n;
    }
    let mut done = 0;
    for chunk in scores.chunks_mut(CHECK_EVERY) {
        items.score(done, chunk);
        done += chunk.len();
        if done < n && deadline.expired() {
            break;
        }
    }
    done
}

/// Small catalogues: score every item into one buffer, sample it for a threshold, collect the
/// candidates (all eligible items when fewer than `k` pass) into `scratch.keys`. Past `deadline`,
/// the items scored so far (a prefix of the ids) stand for the catalogue.
fn scan_whole(
    items: &Items<'_>,
    k: usize,
    excluded: &[u32],
    allow: &impl Fn(u32) -> bool,
    deadline: Deadline,
    scratch: &mut ScanScratch,
) -> Coverage {
    let all = items.vectors.len() / items.dim;
    let ScanScratch {
        scores,
        ids,
        sample,
        keys,
    } = scratch;
    scores.resize(all, 0.0);
    let n = score_prefix(items, scores, deadline);
    let scores = &scores[..n];
    let threshold = sample_stride(n).and_then(|stride| {
        fill_sample(n, stride, excluded, sample, |i| {
            scores.get(i).copied().unwrap_or(f32::NAN)
        });
        sample_threshold(sample, n, excluded, k)
    });
    if let Some(t) = threshold {
        collect(scores, 0, excluded, min_key_of(t), allow, ids, keys);
    }
    if keys.len() < k {
        // No threshold, or too few eligible items above it: take every eligible item.
        keys.clear();
        collect(scores, 0, excluded, 0, allow, ids, keys);
    }
    if n < all {
        Coverage::Cut
    } else {
        Coverage::Complete
    }
}

/// Large catalogues, one pass over the vectors: the threshold from the sampled items scored
/// directly, then per block of `block` items, scores into a small buffer and the candidates
/// collected at once into `scratch.keys`. Should the candidates outgrow a few `k`, the best `k`
/// are kept and the threshold rises to the worst of them. When fewer than `k` pass the sampled
/// threshold, a second pass without one takes every eligible item. Past `deadline` a pass stops
/// at the next check and keeps what it collected.
fn scan_blocked(
    items: &Items<'_>,
    k: usize,
    excluded: &[u32],
    allow: &impl Fn(u32) -> bool,
    block: usize,
    deadline: Deadline,
    scratch: &mut ScanScratch,
) -> Coverage {
    let n = items.vectors.len() / items.dim;
    let ScanScratch {
        scores,
        ids,
        sample,
        keys,
    } = scratch;
    let threshold = sample_stride(n).and_then(|stride| {
        let mut one = [0.0f32];
        fill_sample(n, stride, excluded, sample, |i| {
            items.score(i, &mut one);
            one[0]
        });
        sample_threshold(sample, n, excluded, k)
    });
    let mut coverage = Coverage::Complete;
    if let Some(t) = threshold {
        let pass = Pass {
            block,
            min_key: min_key_of(t),
            deadline,
        };
        coverage = blocked_pass(items, k, excluded, allow, pass, scores, ids, keys);
    }
    if keys.len() < k {
        keys.clear();
        let pass = Pass {
            block,
            min_key: 0,
            deadline,
        };
        coverage = blocked_pass(items, k, excluded, allow, pass, scores, ids, keys);
    }
    coverage
}

/// How one [`blocked_pass`] runs: its block size, the lowest key it collects, when it must stop.
#[derive(Clone, Copy)]
struct Pass {
    block: usize,
    min_key: u64,
    deadline: Deadline,
}

/// One pass of [`scan_blocked`] from `pass.min_key`, raising it to the `k`-th best key whenever
/// more than `4k + 2 × block` candidates are held (so memory stays bounded even without a
/// threshold); it stops at the first check past `pass.deadline`.
#[allow(clippy::too_many_arguments)]
fn blocked_pass(
    items: &Items<'_>,
    k: usize,
    excluded: &[u32],
    allow: &impl Fn(u32) -> bool,
    pass: Pass,
    scores: &mut Vec<f32>,
    ids: &mut Vec<u32>,
    keys: &mut Vec<u64>,
) -> Coverage {
    let Pass {
        block,
        mut min_key,
        deadline,
    } = pass;
    let n = items.vectors.len() / items.dim;
    let cap = 4 * k + 2 * block;
    let mut base = 0;
    let mut since_check = 0;
    while base < n {
        if since_check >= CHECK_EVERY {
            since_check = 0;
            if deadline.expired() {
                return Coverage::Cut;
            }
        }
        let len = block.min(n - base);
        scores.resize(len, 0.0);
        items.score(base, scores);
        collect(scores, base, excluded, min_key, allow, ids, keys);
        if keys.len() > cap {
            // The k-th best key so far: nothing below it can make the top k.
            keep_best(keys, k);
            min_key = keys.last().copied().unwrap_or(min_key);
        }
        base += len;
        since_check += len;
    }
    Coverage::Complete
}

/// `true` when `(sa, ia)` ranks strictly below `(sb, ib)`: lower score, or equal score and higher id.
#[inline]
fn worse(sa: f32, ia: u32, sb: f32, ib: u32) -> bool {
    match sa.total_cmp(&sb) {
        Ordering::Less => true,
        Ordering::Greater => false,
        Ordering::Equal => ia > ib,
    }
}

/// Bounded top-k for the graph search: a binary min-heap (worst entry at the root) of at most
/// `cap` `(score, id)` pairs. Ties on score are broken towards the lower id, so results are deterministic.
#[derive(Debug, Default)]
pub(crate) struct TopK {
    heap: Vec<(f32, u32)>,
    cap: usize,
}

impl TopK {
    /// Empties the heap and sets its capacity to `k` (reusing the allocation).
    pub(crate) fn reset(&mut self, k: usize) {
        self.heap.clear();
        self.heap.reserve(k);
        self.cap = k;
    }

    /// Whether `(score, id)` would be kept by [`push`](Self::push).
    #[inline]
    pub(crate) fn would_accept(&self, score: f32, id: u32) -> bool {
        if self.heap.len() < self.cap {
            return true;
        }
        match self.heap.first() {
            Some(&(rs, ri)) => worse(rs, ri, score, id),
            None => false, // cap == 0
        }
    }

    /// Inserts `(score, id)`, evicting the worst entry when full; a no-op if it would not be kept.
    pub(crate) fn push(&mut self, score: f32, id: u32) {
        if self.heap.len() < self.cap {
            self.heap.push((score, id));
            self.sift_up(self.heap.len() - 1);
        } else if self.would_accept(score, id) {
            self.heap[0] = (score, id);
            self.sift_down(0);
        }
    }

    /// Whether the heap holds its capacity of entries.
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.heap.len() >= self.cap
    }

    /// The worst kept `(score, id)`, which a new entry must beat once the heap is full.
    #[inline]
    pub(crate) fn worst(&self) -> Option<(f32, u32)> {
        self.heap.first().copied()
    }

    /// Removes all entries as `(score, id)` in no particular order.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (f32, u32)> + '_ {
        self.heap.drain(..)
    }

    /// Moves the entries, best first, into `out` (appending) and empties the heap.
    pub(crate) fn drain_sorted_into(&mut self, out: &mut Vec<(u32, f32)>) {
        self.heap
            .sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        out.extend(self.heap.drain(..).map(|(s, id)| (id, s)));
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            let (s, id) = self.heap[i];
            let (ps, pid) = self.heap[parent];
            if !worse(s, id, ps, pid) {
                break;
            }
            self.heap.swap(i, parent);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let len = self.heap.len();
        loop {
            let left = 2 * i + 1;
            if left >= len {
                break;
            }
            let right = left + 1;
            let mut child = left;
            if right < len {
                let (rs, ri) = self.heap[right];
                let (ls, li) = self.heap[left];
                if worse(rs, ri, ls, li) {
                    child = right;
                }
            }
            let (cs, ci) = self.heap[child];
            let (s, id) = self.heap[i];
            if !worse(cs, ci, s, id) {
                break;
            }
            self.heap.swap(i, child);
            i = child;
        }
    }
}
