//! Dapr's actor-placement ring: consistent hashing over virtual nodes, with bounded loads.
//!
//! Every host `H` owns `replication_factor` virtual nodes whose hashes are `hash(H + i)` for
//! `i` in `0..replication_factor`. A key belongs to the first virtual node at or after
//! `hash(key)`, wrapping past the largest hash to the smallest.
//!
//! Collisions: two hosts can produce the same vnode key (host `"a"` with i = 10 and host `"a1"`
//! with i = 0 both give `"a10"`), so the same vnode hash can belong to several hosts. Dapr keeps
//! whichever host its map saw last, which depends on Go's random map order. Here the
//! lexicographically smallest host name wins, so the ring depends only on the set of hosts, never
//! on the order they were added. The losing claims are kept, so when the winner leaves, the next
//! smallest claimant takes the vnode over.

use std::collections::HashMap;
use std::fmt;

use crate::hash::{hash_into, hash_key, hash_many};
use crate::parallel::for_each_chunk;

pub const DEFAULT_REPLICATION_FACTOR: u32 = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingError {
    /// The ring has no hosts. The text is Dapr's `ErrNoHosts`.
    NoHosts,
    /// A replication factor below 1.
    InvalidReplicationFactor(i64),
    /// A load operation named a host that is not in the ring.
    UnknownHost(String),
    /// A load would leave the range of a signed 64-bit integer.
    LoadOverflow(String),
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoHosts => f.write_str("no hosts added"),
            Self::InvalidReplicationFactor(rf) => write!(
                f,
                "replication_factor must be between 1 and {}, got {rf}",
                u32::MAX
            ),
            Self::UnknownHost(host) => write!(f, "unknown host {host:?}"),
            Self::LoadOverflow(host) => write!(f, "load of host {host:?} out of int64 range"),
        }
    }
}

impl std::error::Error for RingError {}

/// The vnode hashes of `host`, in vnode order.
pub fn vnode_hashes(host: &str, replication_factor: u32) -> Vec<u64> {
    vnode_hashes_of_all([host], replication_factor)
}

/// The vnode hashes of every host in turn (`replication_factor` per host, in vnode order).
///
/// The keys are written into one buffer instead of one `String` each: building a ring of
/// 1,000 hosts makes 100,000 keys, and per-key formatting and allocation would cost more than
/// hashing them.
fn vnode_hashes_of_all<'a>(
    hosts: impl IntoIterator<Item = &'a str>,
    replication_factor: u32,
) -> Vec<u64> {
    let suffixes: Vec<String> = (0..replication_factor).map(|i| i.to_string()).collect();
    let mut bytes = Vec::new();
    let mut ends = Vec::new();
    for host in hosts {
        for suffix in &suffixes {
            bytes.extend_from_slice(host.as_bytes());
            bytes.extend_from_slice(suffix.as_bytes());
            ends.push(bytes.len());
        }
    }
    let mut start = 0;
    let keys: Vec<&[u8]> = ends
        .iter()
        .map(|&end| {
            let key = &bytes[start..end];
            start = end;
            key
        })
        .collect();
    hash_many(&keys)
}

/// The bounded-load limit: a host may take a key while `load + 1 <= max_load`.
///
/// `ceil(max(1, (total_load + 1) // hosts) * 1.25)`, computed in exact integers (Dapr goes
/// through float64, which only differs past 2^53).
pub fn max_load(total_load: i128, hosts: usize) -> i128 {
    let average = ((total_load + 1).div_euclid(hosts.max(1) as i128)).max(1);
    (average * 5 + 3) / 4
}

#[derive(Debug, Clone)]
struct Host {
    name: String,
    load: i64,
}

/// A consistent-hashing ring of hosts.
#[derive(Debug, Clone)]
pub struct Ring {
    replication_factor: u32,
    hosts: Vec<Host>,
    host_ids: HashMap<String, u32>,
    /// Every vnode claim, sorted by (hash, host name); for a shared hash the first claim wins.
    hashes: Vec<u64>,
    /// `owners[i]` is the host id behind `hashes[i]`.
    owners: Vec<u32>,
    index: BucketIndex,
    total_load: i128,
}

/// Finds the claim for a hash by the hash's top bits instead of binary-searching the whole
/// table. There are about four buckets per claim (vnode hashes are uniform), so most buckets
/// hold no claim and a lookup reads a single bucket entry, which carries the answer.
#[derive(Debug, Clone, Default)]
struct BucketIndex {
    shift: u32,
    /// One entry per bucket, plus one past the end.
    buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// The first claim whose hash has top bits >= this bucket's (`hashes.len()` if none).
    start: u32,
    /// The owner of that claim, wrapping to the first claim past the end.
    owner: u32,
}

impl BucketIndex {
    fn build(hashes: &[u64], owners: &[u32]) -> Self {
        // Capped at 4M buckets (32 MiB) for rings far larger than any real cluster.
        let bits = (hashes.len().next_power_of_two().trailing_zeros() + 2).clamp(1, 22);
        let shift = 64 - bits;
        let owner_at = |claim: usize| owners.get(claim).or(owners.first()).copied().unwrap_or(0);
        let mut buckets = Vec::with_capacity((1 << bits) + 1);
        let mut claim = 0;
        for bucket in 0..(1u64 << bits) {
            while claim < hashes.len() && (hashes[claim] >> shift) < bucket {
                claim += 1;
            }
            buckets.push(Bucket {
                start: claim as u32,
                owner: owner_at(claim),
            });
        }
        buckets.push(Bucket {
            start: hashes.len() as u32,
            owner: owner_at(hashes.len()),
        });
        Self { shift, buckets }
    }

    /// The first claim whose hash is >= `h` (`hashes.len()` if none).
    #[inline]
    fn first_at_or_after(&self, hashes: &[u64], h: u64) -> usize {
        let bucket = (h >> self.shift) as usize;
        let (lo, hi) = (
            self.buckets[bucket].start as usize,
            self.buckets[bucket + 1].start as usize,
        );
        lo + hashes[lo..hi].partition_point(|&x| x < h)
    }

    /// The owner of hash `h`: the owner of the first claim at or after it, wrapping.
    #[inline]
    fn owner_of(&self, hashes: &[u64], owners: &[u32], h: u64) -> u32 {
        let bucket = (h >> self.shift) as usize;
        let first = self.buckets[bucket];
        let (lo, hi) = (
            first.start as usize,
            self.buckets[bucket + 1].start as usize,
        );
        if lo == hi || h <= hashes[lo] {
            return first.owner;
        }
        let claim = lo + 1 + hashes[lo + 1..hi].partition_point(|&x| x < h);
        owners.get(claim).copied().unwrap_or(owners[0])
    }
}

impl Ring {
    pub fn new(replication_factor: i64) -> Result<Self, RingError> {
        Self::with_hosts(std::iter::empty::<&str>(), replication_factor)
    }

    /// A ring holding `hosts` (duplicates are ignored), hashed in one batch.
    pub fn with_hosts<I, S>(hosts: I, replication_factor: i64) -> Result<Self, RingError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let rf = u32::try_from(replication_factor)
            .ok()
            .filter(|&rf| rf >= 1)
            .ok_or(RingError::InvalidReplicationFactor(replication_factor))?;
        let mut ring = Self {
            replication_factor: rf,
            hosts: Vec::new(),
            host_ids: HashMap::new(),
            hashes: Vec::new(),
            owners: Vec::new(),
            index: BucketIndex::default(),
            total_load: 0,
        };
        for host in hosts {
            let host = host.as_ref();
            if !ring.host_ids.contains_key(host) {
                ring.host_ids
                    .insert(host.to_owned(), ring.hosts.len() as u32);
                ring.hosts.push(Host {
                    name: host.to_owned(),
                    load: 0,
                });
            }
        }
        let hashes = vnode_hashes_of_all(ring.hosts.iter().map(|h| h.name.as_str()), rf);
        let mut claims: Vec<(u64, u32)> = hashes
            .into_iter()
            .enumerate()
            .map(|(i, hash)| (hash, (i / rf as usize) as u32))
            .collect();
        claims.sort_unstable();
        // Shared hashes are rare: order just those runs by host name.
        let hosts = &ring.hosts;
        for run in claims
            .chunk_by_mut(|a, b| a.0 == b.0)
            .filter(|run| run.len() > 1)
        {
            run.sort_unstable_by(|a, b| hosts[a.1 as usize].name.cmp(&hosts[b.1 as usize].name));
        }
        let (hashes, owners) = claims.into_iter().unzip();
        ring.set_claims(hashes, owners);
        Ok(ring)
    }

    pub fn replication_factor(&self) -> u32 {
        self.replication_factor
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    pub fn contains(&self, host: &str) -> bool {
        self.host_ids.contains_key(host)
    }

    /// Host names, sorted.
    pub fn hosts(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
        names.sort_unstable();
        names
    }

    /// The name of the host with internal id `id` (ids come from `lookup_ids`).
    pub fn host_name(&self, id: u32) -> &str {
        &self.hosts[id as usize].name
    }

    /// Adds `host`; returns false (and changes nothing) if it is already there.
    pub fn add(&mut self, host: &str) -> bool {
        if self.contains(host) {
            return false;
        }
        let id = self.hosts.len() as u32;
        self.host_ids.insert(host.to_owned(), id);
        self.hosts.push(Host {
            name: host.to_owned(),
            load: 0,
        });
        let mut added = vnode_hashes(host, self.replication_factor);
        added.sort_unstable();
        self.merge_claims(&added, id);
        true
    }

    /// Merges the sorted vnode hashes of host `id` into the claim table.
    fn merge_claims(&mut self, added: &[u64], id: u32) {
        let total = self.hashes.len() + added.len();
        let mut hashes = Vec::with_capacity(total);
        let mut owners = Vec::with_capacity(total);
        let name = self.hosts[id as usize].name.as_str();
        let (mut old, mut new) = (0, 0);
        while old < self.hashes.len() || new < added.len() {
            let take_new = match (self.hashes.get(old), added.get(new)) {
                (Some(&existing), Some(&candidate)) => {
                    candidate < existing
                        || (candidate == existing
                            && name < self.hosts[self.owners[old] as usize].name.as_str())
                }
                (None, Some(_)) => true,
                _ => false,
            };
            if take_new {
                hashes.push(added[new]);
                owners.push(id);
                new += 1;
            } else {
                hashes.push(self.hashes[old]);
                owners.push(self.owners[old]);
                old += 1;
            }
        }
        self.set_claims(hashes, owners);
    }

    fn set_claims(&mut self, hashes: Vec<u64>, owners: Vec<u32>) {
        self.index = BucketIndex::build(&hashes, &owners);
        self.hashes = hashes;
        self.owners = owners;
    }

    /// Removes `host` and its load; returns false if it was not there. Keys owned by other hosts
    /// keep their owner: only the removed host's vnodes leave the table.
    pub fn remove(&mut self, host: &str) -> bool {
        let Some(id) = self.host_ids.remove(host) else {
            return false;
        };
        let removed = self.hosts.swap_remove(id as usize);
        self.total_load -= i128::from(removed.load);
        // The host that was last now sits in the removed host's slot.
        let moved = self.hosts.len() as u32;
        if id != moved {
            self.host_ids
                .insert(self.hosts[id as usize].name.clone(), id);
        }
        let mut kept = 0;
        for i in 0..self.hashes.len() {
            let owner = self.owners[i];
            if owner == id {
                continue;
            }
            self.hashes[kept] = self.hashes[i];
            self.owners[kept] = if owner == moved { id } else { owner };
            kept += 1;
        }
        self.hashes.truncate(kept);
        self.owners.truncate(kept);
        self.index = BucketIndex::build(&self.hashes, &self.owners);
        true
    }

    /// Index of the claim that owns hash `h`: the first claim at or after it, wrapping to 0.
    fn claim_index(&self, h: u64) -> usize {
        let idx = self.index.first_at_or_after(&self.hashes, h);
        if idx == self.hashes.len() {
            0
        } else {
            idx
        }
    }

    /// The host that owns `key`.
    pub fn lookup(&self, key: &str) -> Result<&str, RingError> {
        if self.hashes.is_empty() {
            return Err(RingError::NoHosts);
        }
        let owner = self
            .index
            .owner_of(&self.hashes, &self.owners, hash_key(key.as_bytes()));
        Ok(self.host_name(owner))
    }

    /// Internal host ids of the owners of `keys` (names via `host_name`), spread over the cores
    /// for large batches.
    pub fn lookup_ids<K: AsRef<[u8]> + Sync>(&self, keys: &[K]) -> Result<Vec<u32>, RingError> {
        if self.hashes.is_empty() {
            return Err(RingError::NoHosts);
        }
        let mut ids = vec![0u32; keys.len()];
        for_each_chunk(keys, &mut ids, |keys, ids| self.fill_lookup_ids(keys, ids));
        Ok(ids)
    }

    /// Internal host ids of the owners of `keys` into `out`, on the calling thread.
    pub fn lookup_ids_into<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        out: &mut [u32],
    ) -> Result<(), RingError> {
        if self.hashes.is_empty() {
            return Err(RingError::NoHosts);
        }
        self.fill_lookup_ids(keys, out);
        Ok(())
    }

    /// Hashes keys in batches, then searches: batch hashing is what makes lookups cheap.
    fn fill_lookup_ids<K: AsRef<[u8]>>(&self, keys: &[K], out: &mut [u32]) {
        // A small batch on the stack: no allocation, and the hashes are still in L1 when read.
        const BATCH: usize = 512;
        let mut hashes = [0u64; BATCH];
        for (keys, out) in keys.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            let hashes = &mut hashes[..keys.len()];
            hash_into(keys, hashes);
            for (id, &h) in out.iter_mut().zip(hashes.iter()) {
                *id = self.index.owner_of(&self.hashes, &self.owners, h);
            }
        }
    }

    /// The winning vnodes: sorted unique hashes and the host that owns each.
    pub fn vnodes(&self) -> (Vec<u64>, Vec<&str>) {
        let winners = (0..self.hashes.len()).filter(|&i| !self.is_shadowed(i));
        winners
            .map(|i| (self.hashes[i], self.host_name(self.owners[i])))
            .unzip()
    }

    /// Whether claim `i` lost its hash to an earlier claim.
    fn is_shadowed(&self, i: usize) -> bool {
        i > 0 && self.hashes[i - 1] == self.hashes[i]
    }

    /// The owner of `key` under bounded loads: starting at the vnode for `key`, the first host
    /// (walking forward, wrapping) whose `load + 1 <= max_load()`.
    pub fn get_least(&self, key: &str) -> Result<&str, RingError> {
        if self.hashes.is_empty() {
            return Err(RingError::NoHosts);
        }
        let limit = self.max_load();
        let start = self.claim_index(hash_key(key.as_bytes()));
        let claims = self.hashes.len();
        // One lap is enough: the least-loaded host always fits under the limit.
        for step in 0..claims {
            let i = (start + step) % claims;
            if self.is_shadowed(i) {
                continue;
            }
            let host = &self.hosts[self.owners[i] as usize];
            #[allow(clippy::int_plus_one)] // spelled as Dapr's loadOK: "load + 1 <= avg"
            if i128::from(host.load) + 1 <= limit {
                return Ok(&host.name);
            }
        }
        Ok(self.host_name(self.owners[start]))
    }

    /// The bounded-load limit for the current loads.
    pub fn max_load(&self) -> i128 {
        max_load(self.total_load, self.hosts.len())
    }

    fn host_mut(&mut self, host: &str) -> Result<&mut Host, RingError> {
        let id = *self
            .host_ids
            .get(host)
            .ok_or_else(|| RingError::UnknownHost(host.to_owned()))?;
        Ok(&mut self.hosts[id as usize])
    }

    /// Sets the load of `host`, keeping the total in step.
    pub fn update_load(&mut self, host: &str, load: i64) -> Result<(), RingError> {
        let entry = self.host_mut(host)?;
        let delta = i128::from(load) - i128::from(entry.load);
        entry.load = load;
        self.total_load += delta;
        Ok(())
    }

    /// Adds `delta` to the load of `host` (Dapr's `Inc` is +1, `Done` is -1).
    pub fn add_load(&mut self, host: &str, delta: i64) -> Result<(), RingError> {
        let entry = self.host_mut(host)?;
        entry.load = entry
            .load
            .checked_add(delta)
            .ok_or_else(|| RingError::LoadOverflow(host.to_owned()))?;
        self.total_load += i128::from(delta);
        Ok(())
    }

    pub fn load(&self, host: &str) -> Result<i64, RingError> {
        let id = self
            .host_ids
            .get(host)
            .ok_or_else(|| RingError::UnknownHost(host.to_owned()))?;
        Ok(self.hosts[*id as usize].load)
    }

    /// Every host's load, sorted by host name.
    pub fn loads(&self) -> Vec<(&str, i64)> {
        let mut loads: Vec<(&str, i64)> = self
            .hosts
            .iter()
            .map(|h| (h.name.as_str(), h.load))
            .collect();
        loads.sort_unstable();
        loads
    }

    pub fn total_load(&self) -> i128 {
        self.total_load
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(hosts: &[&str], rf: i64) -> Ring {
        Ring::with_hosts(hosts.iter().copied(), rf).unwrap()
    }

    /// Reference ring built the obvious way from the spec, to compare against.
    fn expected_owner(hosts: &[&str], rf: u32, key: &str) -> String {
        let mut table: Vec<(u64, &str)> = hosts
            .iter()
            .flat_map(|&h| vnode_hashes(h, rf).into_iter().map(move |x| (x, h)))
            .collect();
        table.sort();
        let h = hash_key(key.as_bytes());
        let idx = table.iter().position(|&(x, _)| x >= h).unwrap_or(0);
        table[idx].1.to_owned()
    }

    #[test]
    fn bucket_index_agrees_with_binary_search() {
        for size in [1usize, 2, 3, 7, 64, 1000] {
            let mut hashes: Vec<u64> = (0..size as u64)
                .map(|i| hash_key(format!("h{i}").as_bytes()))
                .collect();
            // Clustered values leave most buckets empty and pile claims into a few.
            hashes.extend([0, 1, u64::MAX, u64::MAX - 1, 1 << 63]);
            hashes.sort_unstable();
            let owners: Vec<u32> = (0..hashes.len() as u32).collect();
            let index = BucketIndex::build(&hashes, &owners);
            let probes = hashes
                .iter()
                .flat_map(|&h| [h, h.wrapping_add(1), h.wrapping_sub(1)])
                .chain((0..200).map(|i| hash_key(format!("probe{i}").as_bytes())));
            for probe in probes {
                let expected = hashes.partition_point(|&x| x < probe);
                assert_eq!(index.first_at_or_after(&hashes, probe), expected);
                let wrapped = if expected == hashes.len() {
                    0
                } else {
                    expected
                };
                assert_eq!(index.owner_of(&hashes, &owners, probe), owners[wrapped]);
            }
        }
    }

    #[test]
    fn vnode_hashes_match_dapr_vectors() {
        assert_eq!(
            vnode_hashes("192.168.1.83:60992", 5),
            [
                11414427053803968138,
                6110756290993384529,
                13876541546109691082,
                12165331075625862737,
                9528020266818944582
            ]
        );
        assert_eq!(
            vnode_hashes("192.168.1.89:62362", 3),
            [
                13384490355354205375,
                11281728843146723001,
                694935339057032644
            ]
        );
    }

    #[test]
    fn vnode_table_is_sorted_and_owned() {
        let r = ring(&["192.168.1.83:60992", "192.168.1.89:62362"], 3);
        let (hashes, owners) = r.vnodes();
        assert_eq!(
            hashes,
            [
                694935339057032644,
                6110756290993384529,
                11281728843146723001,
                11414427053803968138,
                13384490355354205375,
                13876541546109691082
            ]
        );
        assert_eq!(
            owners,
            [
                "192.168.1.89:62362",
                "192.168.1.83:60992",
                "192.168.1.89:62362",
                "192.168.1.83:60992",
                "192.168.1.89:62362",
                "192.168.1.83:60992"
            ]
        );
    }

    #[test]
    fn lookup_takes_first_vnode_at_or_after_the_hash() {
        let hosts = ["10.0.0.1:50002", "10.0.0.2:50002", "10.0.0.3:50002"];
        let r = ring(&hosts, 100);
        for i in 0..500 {
            let key = format!("actor-{i}");
            assert_eq!(r.lookup(&key).unwrap(), expected_owner(&hosts, 100, &key));
        }
    }

    #[test]
    fn lookup_wraps_past_the_largest_hash() {
        let r = ring(&["192.168.1.83:60992", "192.168.1.89:62362"], 3);
        let (hashes, owners) = r.vnodes();
        let largest = *hashes.last().unwrap();
        // Find a key hashing above every vnode; it must land on the smallest vnode.
        let key = (0..)
            .map(|i| format!("k{i}"))
            .find(|k| hash_key(k.as_bytes()) > largest)
            .unwrap();
        assert_eq!(r.lookup(&key).unwrap(), owners[0]);
        // A key hashing exactly onto a vnode belongs to that vnode's host.
        assert_eq!(
            r.lookup("192.168.1.83:609921").unwrap(),
            "192.168.1.83:60992"
        );
    }

    #[test]
    fn empty_ring_reports_no_hosts() {
        let r = Ring::new(100).unwrap();
        assert_eq!(r.lookup("a"), Err(RingError::NoHosts));
        assert_eq!(r.get_least("a"), Err(RingError::NoHosts));
        assert_eq!(RingError::NoHosts.to_string(), "no hosts added");
    }

    #[test]
    fn replication_factor_must_be_positive() {
        assert_eq!(
            Ring::new(0).unwrap_err(),
            RingError::InvalidReplicationFactor(0)
        );
        assert!(Ring::new(-3).is_err());
    }

    #[test]
    fn removal_moves_only_the_removed_hosts_keys() {
        let hosts = ["a:1", "b:2", "c:3", "d:4"];
        let mut r = ring(&hosts, 50);
        let keys: Vec<String> = (0..2000).map(|i| format!("actor-{i}")).collect();
        let before: Vec<String> = keys
            .iter()
            .map(|k| r.lookup(k).unwrap().to_owned())
            .collect();
        assert!(r.remove("b:2"));
        assert!(!r.remove("b:2"));
        for (key, owner) in keys.iter().zip(&before) {
            let now = r.lookup(key).unwrap();
            if owner != "b:2" {
                assert_eq!(now, owner);
            }
        }
        assert_eq!(r.hosts(), ["a:1", "c:3", "d:4"]);
        // Incremental removal equals building from scratch.
        let fresh = ring(&["a:1", "c:3", "d:4"], 50);
        assert_eq!(r.vnodes(), fresh.vnodes());
    }

    #[test]
    fn adding_moves_keys_only_to_the_new_host() {
        let mut r = ring(&["a:1", "b:2"], 20);
        let keys: Vec<String> = (0..2000).map(|i| format!("actor-{i}")).collect();
        let before: Vec<String> = keys
            .iter()
            .map(|k| r.lookup(k).unwrap().to_owned())
            .collect();
        assert!(r.add("c:3"));
        assert!(!r.add("c:3"));
        for (key, owner) in keys.iter().zip(&before) {
            let now = r.lookup(key).unwrap();
            assert!(now == owner || now == "c:3");
        }
        assert_eq!(r.vnodes(), ring(&["c:3", "b:2", "a:1"], 20).vnodes());
    }

    #[test]
    fn colliding_vnodes_go_to_the_smallest_host_whatever_the_order() {
        // "a" + "10" and "a1" + "0" are the same vnode key.
        let shared = hash_key(b"a10");
        let forward = ring(&["a", "a1"], 11);
        let backward = ring(&["a1", "a"], 11);
        assert_eq!(forward.vnodes(), backward.vnodes());
        let (hashes, owners) = forward.vnodes();
        let at = hashes.iter().position(|&h| h == shared).unwrap();
        assert_eq!(owners[at], "a");
        assert_eq!(hashes.len(), 21);
        assert_eq!(forward.lookup("a10").unwrap(), "a");

        let mut incremental = ring(&["a1"], 11);
        incremental.add("a");
        assert_eq!(incremental.vnodes(), forward.vnodes());
        // When the winner leaves, the other claimant takes the vnode over.
        incremental.remove("a");
        assert_eq!(incremental.vnodes(), ring(&["a1"], 11).vnodes());
        assert_eq!(incremental.lookup("a10").unwrap(), "a1");
    }

    #[test]
    fn max_load_follows_the_bounded_load_formula() {
        assert_eq!(max_load(0, 3), 2); // max(1, 1 // 3) = 1 -> ceil(1.25) = 2
        assert_eq!(max_load(7, 2), 5); // 8 // 2 = 4 -> 5
        assert_eq!(max_load(9, 2), 7); // 10 // 2 = 5 -> ceil(6.25) = 7
        assert_eq!(max_load(-10, 2), 2);
    }

    #[test]
    fn get_least_walks_past_full_hosts() {
        let mut r = ring(&["a:1", "b:2", "c:3"], 10);
        let key = "actor-7";
        let first = r.lookup(key).unwrap().to_owned();
        assert_eq!(r.get_least(key).unwrap(), first);
        // Load the natural owner up to the limit: the key must go elsewhere.
        for _ in 0..3 {
            r.add_load(&first, 1).unwrap();
        }
        assert_eq!(r.total_load(), 3);
        assert_eq!(r.max_load(), 2); // (3 + 1) // 3 = 1 -> 2
        let second = r.get_least(key).unwrap().to_owned();
        assert_ne!(second, first);
        // It is the next distinct host clockwise from the key's vnode.
        let (hashes, owners) = r.vnodes();
        let h = hash_key(key.as_bytes());
        let start = hashes.iter().position(|&x| x >= h).unwrap_or(0);
        let expected = (0..hashes.len())
            .map(|s| owners[(start + s) % hashes.len()])
            .find(|&o| o != first)
            .unwrap();
        assert_eq!(second, expected);
        r.add_load(&first, -3).unwrap();
        assert_eq!(r.get_least(key).unwrap(), first);
    }

    #[test]
    fn loads_are_tracked_per_host_and_in_total() {
        let mut r = ring(&["a", "b"], 1);
        r.add_load("a", 1).unwrap();
        r.add_load("a", 1).unwrap();
        r.update_load("b", 5).unwrap();
        assert_eq!(r.loads(), [("a", 2), ("b", 5)]);
        assert_eq!(r.total_load(), 7);
        r.remove("b");
        assert_eq!(r.total_load(), 2);
        assert_eq!(r.load("a"), Ok(2));
        assert_eq!(
            r.add_load("zz", 1),
            Err(RingError::UnknownHost("zz".into()))
        );
        r.update_load("a", i64::MAX).unwrap();
        assert_eq!(r.add_load("a", 1), Err(RingError::LoadOverflow("a".into())));
        assert_eq!(r.load("a"), Ok(i64::MAX));
    }

    #[test]
    fn lookup_ids_agree_with_lookup() {
        let r = ring(&["a:1", "b:2", "c:3"], 100);
        let keys: Vec<String> = (0..1000).map(|i| format!("actor-{i}")).collect();
        let ids = r.lookup_ids(&keys).unwrap();
        for (key, id) in keys.iter().zip(ids) {
            assert_eq!(r.host_name(id), r.lookup(key).unwrap());
        }
    }
}
