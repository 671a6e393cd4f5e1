//! BLAKE2b single-block compression of several keys at once with x86 vector intrinsics: one
//! 64-bit lane per key, so each state word of all the keys sits in one vector.
//!
//! Written with intrinsics because the compiler does not vectorise the portable form well.
//! Two builds: four lanes in 256-bit vectors for AVX2, and eight lanes in 512-bit vectors for
//! AVX-512, which also has a native 64-bit rotate. The eight-lane build is faster even where
//! 512-bit operations are split in two (AMD Zen 4): G's long dependency chain leaves the
//! execution units idle with four lanes, and twice the independent work fills them.

use std::arch::x86_64::*;

use super::{hash_key, BLOCK_BYTES, IV, PARAM_WORD0, SIGMA};

/// Hashes `keys` into `out` with AVX2, four single-block keys per compression.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn hash_into_avx2<K: AsRef<[u8]>>(keys: &[K], out: &mut [u64]) {
    let mut group = Group::<4>::new();
    for (slot, key) in keys.iter().enumerate() {
        let key = key.as_ref();
        if key.len() > BLOCK_BYTES {
            out[slot] = hash_key(key);
        } else if group.push(key, slot) {
            group.flush_avx2(out);
        }
    }
    if group.filled > 0 {
        group.flush_avx2(out);
    }
}

/// Hashes `keys` into `out` with AVX-512, eight single-block keys per compression.
///
/// # Safety
/// The CPU must support AVX-512F and AVX2.
#[target_feature(enable = "avx2,avx512f")]
pub(crate) unsafe fn hash_into_avx512<K: AsRef<[u8]>>(keys: &[K], out: &mut [u64]) {
    let mut group = Group::<8>::new();
    for (slot, key) in keys.iter().enumerate() {
        let key = key.as_ref();
        if key.len() > BLOCK_BYTES {
            out[slot] = hash_key(key);
        } else if group.push(key, slot) {
            group.flush_avx512(out);
        }
    }
    if group.filled > 0 {
        group.flush_avx512(out);
    }
}

impl Group<4> {
    #[target_feature(enable = "avx2")]
    fn flush_avx2(&mut self, out: &mut [u64]) {
        let quads = self.prepare();
        // SAFETY: compiled for, and called on, AVX2 CPUs only.
        let hashes = unsafe {
            match quads {
                1 => compress_avx2::<1>(&self.blocks, &self.lengths),
                2 => compress_avx2::<2>(&self.blocks, &self.lengths),
                3 => compress_avx2::<3>(&self.blocks, &self.lengths),
                _ => compress_avx2::<4>(&self.blocks, &self.lengths),
            }
        };
        self.finish(hashes, out);
    }
}

impl Group<8> {
    #[target_feature(enable = "avx2,avx512f")]
    fn flush_avx512(&mut self, out: &mut [u64]) {
        let quads = self.prepare();
        // SAFETY: compiled for, and called on, AVX-512F and AVX2 CPUs only.
        let hashes = unsafe {
            match quads {
                1 => compress_avx512::<1>(&self.blocks, &self.lengths),
                2 => compress_avx512::<2>(&self.blocks, &self.lengths),
                3 => compress_avx512::<3>(&self.blocks, &self.lengths),
                _ => compress_avx512::<4>(&self.blocks, &self.lengths),
            }
        };
        self.finish(hashes, out);
    }
}

/// Up to `L` keys waiting to be compressed together.
struct Group<const L: usize> {
    /// Each key zero-padded to a block, as little-endian words.
    blocks: [[u64; 16]; L],
    lengths: [u64; L],
    slots: [usize; L],
    /// Words used by the group's longest key; `prepare` zeroes the rest of what is read.
    words: usize,
    filled: usize,
}

impl<const L: usize> Group<L> {
    fn new() -> Self {
        Self {
            blocks: [[0; 16]; L],
            lengths: [0; L],
            slots: [0; L],
            words: 0,
            filled: 0,
        }
    }

    /// Adds a key of at most one block; true when the group is full.
    #[inline(always)]
    fn push(&mut self, key: &[u8], slot: usize) -> bool {
        let lane = self.filled;
        // Word by word rather than through a padded copy: keys are short, and a variable-length
        // copy costs a library call per key.
        let block = &mut self.blocks[lane];
        let mut chunks = key.chunks_exact(8);
        for (word, chunk) in block.iter_mut().zip(&mut chunks) {
            *word = u64::from_le_bytes(chunk.try_into().expect("8-byte chunk"));
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let last = tail
                .iter()
                .enumerate()
                .fold(0u64, |word, (i, &byte)| word | u64::from(byte) << (8 * i));
            block[key.len() / 8] = last;
        }
        self.lengths[lane] = key.len() as u64;
        self.slots[lane] = slot;
        self.words = self.words.max(key.len().div_ceil(8));
        self.filled += 1;
        self.filled == L
    }

    /// Zeroes every word the transpose reads that is not this group's data: lanes can hold
    /// words of a longer key from an earlier group, and unfilled lanes hold whole stale keys.
    /// Returns how many quads of message words (1 to 4) hold data.
    #[inline(always)]
    fn prepare(&mut self) -> usize {
        let quads = self.words.div_ceil(4).max(1);
        let read = quads * 4;
        for lane in 0..L {
            let used = if lane < self.filled {
                self.lengths[lane].div_ceil(8) as usize
            } else {
                0
            };
            for word in &mut self.blocks[lane][used..read] {
                *word = 0;
            }
        }
        quads
    }

    /// Writes each filled lane's hash to its slot and empties the group.
    #[inline(always)]
    fn finish(&mut self, hashes: [u64; L], out: &mut [u64]) {
        for lane in 0..self.filled {
            out[self.slots[lane]] = hashes[lane];
        }
        self.filled = 0;
        self.words = 0;
    }
}

/// Message words `4 * quad .. 4 * quad + 4` of lanes `first .. first + 4`, one vector per word.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn transpose_quad<const L: usize>(
    blocks: &[[u64; 16]; L],
    first: usize,
    quad: usize,
) -> [__m256i; 4] {
    let r0 = _mm256_loadu_si256(blocks[first][4 * quad..].as_ptr().cast());
    let r1 = _mm256_loadu_si256(blocks[first + 1][4 * quad..].as_ptr().cast());
    let r2 = _mm256_loadu_si256(blocks[first + 2][4 * quad..].as_ptr().cast());
    let r3 = _mm256_loadu_si256(blocks[first + 3][4 * quad..].as_ptr().cast());
    let t0 = _mm256_unpacklo_epi64(r0, r1);
    let t1 = _mm256_unpackhi_epi64(r0, r1);
    let t2 = _mm256_unpacklo_epi64(r2, r3);
    let t3 = _mm256_unpackhi_epi64(r2, r3);
    [
        _mm256_permute2x128_si256(t0, t2, 0x20),
        _mm256_permute2x128_si256(t1, t3, 0x20),
        _mm256_permute2x128_si256(t0, t2, 0x31),
        _mm256_permute2x128_si256(t1, t3, 0x31),
    ]
}

/// The 16-word initial state of a single, final block of `length` bytes, unkeyed, 64-byte
/// digest: h = IV ^ parameters, then the counter (the length) and the final-block flag.
fn initial_state() -> [u64; 16] {
    let mut v = [0u64; 16];
    v[..8].copy_from_slice(&IV);
    v[0] ^= PARAM_WORD0;
    v[8..].copy_from_slice(&IV);
    v[14] = !v[14];
    v
}

/// BLAKE2b's G function on state words a, b, c, d of `$v` with message vectors x, y, given
/// the vector add, xor and rotate-right operations.
macro_rules! g {
    ($v:ident, $add:ident, $xor:ident, $ror:ident; $a:expr, $b:expr, $c:expr, $d:expr, $x:expr, $y:expr) => {
        $v[$a] = $add($add($v[$a], $v[$b]), $x);
        $v[$d] = $ror::<32>($xor($v[$d], $v[$a]));
        $v[$c] = $add($v[$c], $v[$d]);
        $v[$b] = $ror::<24>($xor($v[$b], $v[$c]));
        $v[$a] = $add($add($v[$a], $v[$b]), $y);
        $v[$d] = $ror::<16>($xor($v[$d], $v[$a]));
        $v[$c] = $add($v[$c], $v[$d]);
        $v[$b] = $ror::<63>($xor($v[$b], $v[$c]));
    };
}

/// One BLAKE2b round with the message schedule of round `$r`.
macro_rules! round {
    ($v:ident, $m:ident, $add:ident, $xor:ident, $ror:ident; $r:expr) => {
        let s = &SIGMA[$r];
        g!($v, $add, $xor, $ror; 0, 4, 8, 12, $m[s[0]], $m[s[1]]);
        g!($v, $add, $xor, $ror; 1, 5, 9, 13, $m[s[2]], $m[s[3]]);
        g!($v, $add, $xor, $ror; 2, 6, 10, 14, $m[s[4]], $m[s[5]]);
        g!($v, $add, $xor, $ror; 3, 7, 11, 15, $m[s[6]], $m[s[7]]);
        g!($v, $add, $xor, $ror; 0, 5, 10, 15, $m[s[8]], $m[s[9]]);
        g!($v, $add, $xor, $ror; 1, 6, 11, 12, $m[s[10]], $m[s[11]]);
        g!($v, $add, $xor, $ror; 2, 7, 8, 13, $m[s[12]], $m[s[13]]);
        g!($v, $add, $xor, $ror; 3, 4, 9, 14, $m[s[14]], $m[s[15]]);
    };
}

/// All twelve rounds, spelled out so every index is a constant and the state stays in
/// registers.
macro_rules! rounds {
    ($v:ident, $m:ident, $add:ident, $xor:ident, $ror:ident) => {
        round!($v, $m, $add, $xor, $ror; 0);
        round!($v, $m, $add, $xor, $ror; 1);
        round!($v, $m, $add, $xor, $ror; 2);
        round!($v, $m, $add, $xor, $ror; 3);
        round!($v, $m, $add, $xor, $ror; 4);
        round!($v, $m, $add, $xor, $ror; 5);
        round!($v, $m, $add, $xor, $ror; 6);
        round!($v, $m, $add, $xor, $ror; 7);
        round!($v, $m, $add, $xor, $ror; 8);
        round!($v, $m, $add, $xor, $ror; 9);
        round!($v, $m, $add, $xor, $ror; 0);
        round!($v, $m, $add, $xor, $ror; 1);
    };
}

/// AVX2 has no 64-bit rotate: byte-aligned rotations are byte shuffles, 63 is shift-and-add.
#[inline]
#[target_feature(enable = "avx2")]
fn ror256<const N: i32>(x: __m256i) -> __m256i {
    match N {
        32 => _mm256_shuffle_epi32(x, 0b10_11_00_01),
        24 => _mm256_shuffle_epi8(
            x,
            _mm256_setr_epi8(
                3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10, 3, 4, 5, 6, 7, 0, 1, 2, 11,
                12, 13, 14, 15, 8, 9, 10,
            ),
        ),
        16 => _mm256_shuffle_epi8(
            x,
            _mm256_setr_epi8(
                2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9, 2, 3, 4, 5, 6, 7, 0, 1, 10,
                11, 12, 13, 14, 15, 8, 9,
            ),
        ),
        63 => _mm256_or_si256(_mm256_srli_epi64(x, 63), _mm256_add_epi64(x, x)),
        _ => unreachable!("BLAKE2b rotates by 32, 24, 16 and 63 only"),
    }
}

#[inline]
#[target_feature(enable = "avx2")]
fn add256(a: __m256i, b: __m256i) -> __m256i {
    _mm256_add_epi64(a, b)
}

#[inline]
#[target_feature(enable = "avx2")]
fn xor256(a: __m256i, b: __m256i) -> __m256i {
    _mm256_xor_si256(a, b)
}

/// Output word 0 of BLAKE2b-512 for four single-block messages whose words past the first
/// `QUADS` quads are zero.
///
/// Short keys leave most message words zero: knowing how many at compile time lets the compiler
/// drop the additions of zero words, and only the quads that hold data are transposed.
#[target_feature(enable = "avx2")]
unsafe fn compress_avx2<const QUADS: usize>(
    blocks: &[[u64; 16]; 4],
    lengths: &[u64; 4],
) -> [u64; 4] {
    let mut m = [_mm256_setzero_si256(); 16];
    for quad in 0..QUADS {
        let [w0, w1, w2, w3] = transpose_quad(blocks, 0, quad);
        m[4 * quad..4 * quad + 4].copy_from_slice(&[w0, w1, w2, w3]);
    }
    let mut v = initial_state().map(|word| _mm256_set1_epi64x(word as i64));
    let counters = _mm256_loadu_si256(lengths.as_ptr().cast());
    v[12] = _mm256_xor_si256(v[12], counters);
    let h0 = v[0];
    rounds!(v, m, add256, xor256, ror256);
    let out = _mm256_xor_si256(_mm256_xor_si256(h0, v[0]), v[8]);
    let mut hashes = [0u64; 4];
    _mm256_storeu_si256(hashes.as_mut_ptr().cast(), out);
    hashes
}

#[inline]
#[target_feature(enable = "avx512f")]
fn ror512<const N: i32>(x: __m512i) -> __m512i {
    _mm512_ror_epi64::<N>(x)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn add512(a: __m512i, b: __m512i) -> __m512i {
    _mm512_add_epi64(a, b)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn xor512(a: __m512i, b: __m512i) -> __m512i {
    _mm512_xor_si512(a, b)
}

/// Output word 0 of BLAKE2b-512 for eight single-block messages (see `compress_avx2`).
#[target_feature(enable = "avx2,avx512f")]
unsafe fn compress_avx512<const QUADS: usize>(
    blocks: &[[u64; 16]; 8],
    lengths: &[u64; 8],
) -> [u64; 8] {
    let mut m = [_mm512_setzero_si512(); 16];
    for quad in 0..QUADS {
        let low = transpose_quad(blocks, 0, quad);
        let high = transpose_quad(blocks, 4, quad);
        for i in 0..4 {
            m[4 * quad + i] = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(low[i]), high[i]);
        }
    }
    let mut v = initial_state().map(|word| _mm512_set1_epi64(word as i64));
    let counters = _mm512_loadu_si512(lengths.as_ptr().cast());
    v[12] = _mm512_xor_si512(v[12], counters);
    let h0 = v[0];
    rounds!(v, m, add512, xor512, ror512);
    let out = _mm512_xor_si512(_mm512_xor_si512(h0, v[0]), v[8]);
    let mut hashes = [0u64; 8];
    _mm512_storeu_si512(hashes.as_mut_ptr().cast(), out);
    hashes
}
