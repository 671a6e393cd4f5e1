//! The placement hash: the first 8 bytes of unkeyed BLAKE2b-512, read as a little-endian u64.
//!
//! `hash_key` goes through the `blake2` crate and is the reference. `hash_many` is the batch
//! path used to build rings and answer bulk lookups: actor IDs and vnode keys are nearly always
//! shorter than one BLAKE2b block (128 bytes), so on CPUs with AVX2 or AVX-512 it compresses
//! four or eight such keys at once and computes only the output word the placement hash keeps
//! (`hash_x86.rs`). Longer keys and other CPUs take the reference path. Tests check every path
//! against the reference.

use blake2::{Blake2b512, Digest};

use crate::parallel::for_each_chunk;

#[cfg(target_arch = "x86_64")]
#[path = "hash_x86.rs"]
mod x86;

/// One BLAKE2b block: keys up to this long are compressed exactly once.
const BLOCK_BYTES: usize = 128;

const IV: [u64; 8] = [
    0x6a09_e667_f3bc_c908,
    0xbb67_ae85_84ca_a73b,
    0x3c6e_f372_fe94_f82b,
    0xa54f_f53a_5f1d_36f1,
    0x510e_527f_ade6_82d1,
    0x9b05_688c_2b3e_6c1f,
    0x1f83_d9ab_fb41_bd6b,
    0x5be0_cd19_137e_2179,
];

/// Parameter block word 0 for an unkeyed hash with a 64-byte digest (fanout 1, depth 1).
const PARAM_WORD0: u64 = 0x0101_0040;

const SIGMA: [[usize; 16]; 10] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
    [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
    [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
    [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
    [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
    [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
    [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
    [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
    [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
];

/// The placement hash of one key (reference implementation).
pub fn hash_key(key: &[u8]) -> u64 {
    let digest = Blake2b512::digest(key);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// The placement hashes of many keys, in order, spread over the cores for large batches.
pub fn hash_many<K: AsRef<[u8]> + Sync>(keys: &[K]) -> Vec<u64> {
    let mut out = vec![0u64; keys.len()];
    for_each_chunk(keys, &mut out, hash_into);
    out
}

/// The placement hashes of `keys` into `out`, on the calling thread.
pub fn hash_into<K: AsRef<[u8]>>(keys: &[K], out: &mut [u64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx2")
        {
            // SAFETY: the CPU supports both features the function is compiled for.
            unsafe { x86::hash_into_avx512(keys, out) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2.
            unsafe { x86::hash_into_avx2(keys, out) };
            return;
        }
    }
    for (slot, key) in out.iter_mut().zip(keys) {
        *slot = hash_key(key.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parallel::PARALLEL_THRESHOLD;

    fn numbered(prefix: &str, count: usize) -> Vec<String> {
        (0..count).map(|i| format!("{prefix}{i}")).collect()
    }

    #[test]
    fn dapr_vectors() {
        let first: Vec<u64> = numbered("192.168.1.83:60992", 5)
            .iter()
            .map(|k| hash_key(k.as_bytes()))
            .collect();
        assert_eq!(
            first,
            [
                11414427053803968138,
                6110756290993384529,
                13876541546109691082,
                12165331075625862737,
                9528020266818944582
            ]
        );
        let second: Vec<u64> = numbered("192.168.1.89:62362", 3)
            .iter()
            .map(|k| hash_key(k.as_bytes()))
            .collect();
        assert_eq!(
            second,
            [
                13384490355354205375,
                11281728843146723001,
                694935339057032644
            ]
        );
    }

    #[test]
    fn batch_path_matches_reference_for_every_length() {
        // Lengths around the one-block boundary, in groups that do and don't fill the lanes.
        let keys: Vec<Vec<u8>> = (0..=260usize)
            .map(|len| (0..len).map(|i| (i * 31 + len) as u8).collect())
            .collect();
        let batch = hash_many(&keys);
        for (key, &hash) in keys.iter().zip(&batch) {
            assert_eq!(hash, hash_key(key), "length {}", key.len());
        }
    }

    #[test]
    fn batch_path_clears_words_left_by_longer_keys() {
        // Long keys first, then shorter ones into the same lanes.
        let keys: Vec<Vec<u8>> = (0..=130usize)
            .rev()
            .chain([40, 3, 128, 0, 9, 100, 1, 64, 65, 33, 31, 8])
            // A whole group of empty keys after long ones: nothing stale may leak in.
            .chain([120; 8])
            .chain([0; 9])
            .map(|len| vec![b'x'; len])
            .collect();
        for (key, hash) in keys.iter().zip(hash_many(&keys)) {
            assert_eq!(hash, hash_key(key), "length {}", key.len());
        }
    }

    /// Every vector path the CPU can run, not only the one `hash_into` would pick.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn each_x86_path_matches_reference() {
        let keys: Vec<Vec<u8>> = (0..=140usize)
            .chain((0..=140).rev())
            .map(|len| (0..len).map(|i| (i * 7 + len) as u8).collect())
            .collect();
        let expected: Vec<u64> = keys.iter().map(|k| hash_key(k)).collect();
        let mut out = vec![0u64; keys.len()];
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: checked just above.
            unsafe { x86::hash_into_avx2(&keys, &mut out) };
            assert_eq!(out, expected);
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            out.fill(0);
            // SAFETY: checked just above (AVX-512F implies AVX2 on every CPU that has it).
            unsafe { x86::hash_into_avx512(&keys, &mut out) };
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn parallel_batch_matches_reference() {
        let keys = numbered("actor-", PARALLEL_THRESHOLD * 2 + 3);
        let batch = hash_many(&keys);
        for (key, hash) in keys.iter().zip(batch).step_by(97) {
            assert_eq!(hash, hash_key(key.as_bytes()));
        }
    }
}
