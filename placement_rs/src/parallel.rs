//! Splitting batch work over the machine's cores.

/// Below this many items a batch stays on the calling thread: spawning costs more than it saves.
pub const PARALLEL_THRESHOLD: usize = 32 * 1024;

/// Runs `work` over matching chunks of `items` and `out`, one chunk per core for large batches.
pub fn for_each_chunk<I, O, F>(items: &[I], out: &mut [O], work: F)
where
    I: Sync,
    O: Send,
    F: Fn(&[I], &mut [O]) + Sync,
{
    assert_eq!(items.len(), out.len(), "every item needs an output slot");
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    if items.len() < PARALLEL_THRESHOLD || workers < 2 {
        work(items, out);
        return;
    }
    let chunk = items.len().div_ceil(workers);
    let work = &work;
    std::thread::scope(|scope| {
        for (item_chunk, out_chunk) in items.chunks(chunk).zip(out.chunks_mut(chunk)) {
            scope.spawn(move || work(item_chunk, out_chunk));
        }
    });
}
