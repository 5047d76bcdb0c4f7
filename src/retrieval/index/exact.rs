//! Exact inner-product scan: a dot kernel LLVM vectorises, blocked scoring, and a bounded top-k
//! heap, so a query costs one pass over the vectors and no allocation proportional to the catalogue.

use std::cmp::Ordering;

/// Items scored per block before selection: the scores stay in L1 and the dot loop stays branch-free.
const BLOCK: usize = 256;
/// Independent accumulators in [`dot`]: enough to hide add latency with SSE2 (4 registers) or AVX2 (2).
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

/// Scores every item, keeping the `k` best that pass `allow` in `top`.
/// `allow` is called only for items whose score would enter the current top-k.
#[allow(clippy::too_many_arguments)]
pub(crate) fn scan(
    vectors: &[f32],
    bias: Option<&[f32]>,
    dim: usize,
    query: &[f32],
    k: usize,
    allow: &impl Fn(u32) -> bool,
    top: &mut TopK,
    block: &mut Vec<f32>,
) {
    top.reset(k);
    if dim == 0 {
        return;
    }
    block.resize(BLOCK, 0.0);
    for (b, rows) in vectors.chunks(BLOCK * dim).enumerate() {
        let base = b * BLOCK;
        let count = rows.len() / dim;
        let scores = &mut block[..count];
        for (s, row) in scores.iter_mut().zip(rows.chunks_exact(dim)) {
            *s = dot(query, row);
        }
        if let Some(bias) = bias {
            for (s, b) in scores.iter_mut().zip(&bias[base..base + count]) {
                *s += b;
            }
        }
        for (j, &score) in scores.iter().enumerate() {
            // `vectors` holds at most u32::MAX + 1 rows (checked at build), so ids fit.
            let id = (base + j) as u32;
            if top.would_accept(score, id) && allow(id) {
                top.push(score, id);
            }
        }
    }
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

/// Bounded top-k: a binary min-heap (worst entry at the root) of at most `cap` `(score, id)` pairs.
/// Ties on score are broken towards the lower id, so results are deterministic.
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
