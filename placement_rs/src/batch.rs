//! Feeding large batches of Python `str` keys to Rust work while the GIL is released.
//!
//! Reading keys out of Python objects needs the GIL; hashing them does not. A batch is read in
//! chunks: each chunk's UTF-8 bytes are copied into a buffer of its own and handed to worker
//! threads, which hash and search it while the calling thread (still holding the GIL) reads the
//! next chunk. When the last chunk is read, the calling thread releases the GIL and joins the
//! workers. On a 2-core machine this hides the reading almost entirely behind the hashing.

use std::sync::mpsc;
use std::sync::Mutex;

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

/// Keys per chunk: large enough that handing a chunk over costs nothing, small enough that the
/// workers start early and the last chunk leaves little to wait for.
const CHUNK_KEYS: usize = 16 * 1024;

/// The error for a non-`str` argument, with the same text the pure-Python ring gives.
pub fn not_str(obj: &Bound<'_, PyAny>, what: &str) -> PyErr {
    let type_name = obj
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string());
    PyTypeError::new_err(format!("{what} must be str, not {type_name}"))
}

/// A batch of keys as given by the caller: a list, a tuple, or any other iterable (collected
/// into a new list first).
pub struct KeySource<'py> {
    items: Bound<'py, PyAny>,
    is_tuple: bool,
    len: usize,
}

/// The UTF-8 bytes of a run of keys, in one buffer.
#[derive(Default)]
pub struct KeyChunk {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl KeyChunk {
    pub fn keys(&self) -> Vec<&[u8]> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let key = &self.bytes[start..end];
                start = end;
                key
            })
            .collect()
    }

    /// The keys as `&str`: they were copied from Python `str` objects, so they are UTF-8.
    pub fn strs(&self) -> Vec<&str> {
        self.keys()
            .into_iter()
            .map(|key| std::str::from_utf8(key).expect("a str's UTF-8 encoding"))
            .collect()
    }
}

impl<'py> KeySource<'py> {
    /// `plural` names the argument, e.g. "keys" (a bare str is refused: it would iterate its
    /// characters).
    pub fn new(items: &Bound<'py, PyAny>, plural: &str) -> PyResult<Self> {
        if items.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err(format!(
                "{plural} must be an iterable of str, not a single str"
            )));
        }
        if let Ok(tuple) = items.cast::<PyTuple>() {
            return Ok(Self {
                len: tuple.len(),
                items: tuple.clone().into_any(),
                is_tuple: true,
            });
        }
        let list = match items.cast::<PyList>() {
            Ok(list) => list.clone(),
            Err(_) => PyList::new(items.py(), items.try_iter()?.collect::<PyResult<Vec<_>>>()?)?,
        };
        Ok(Self {
            len: list.len(),
            items: list.into_any(),
            is_tuple: false,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Copies keys `start..end` out. `what` names one key in errors, e.g. "key".
    ///
    /// Items are borrowed, not reference-counted: the GIL is held and no Python code runs
    /// while they are read, so the list cannot change underneath.
    pub fn read(&self, start: usize, end: usize, what: &str) -> PyResult<KeyChunk> {
        let py = self.items.py();
        let mut chunk = KeyChunk {
            bytes: Vec::with_capacity((end - start) * 40),
            ends: Vec::with_capacity(end - start),
        };
        for index in start..end {
            // SAFETY: `index < self.len`, the container's length, which cannot change while
            // this loop holds the GIL; the pointer is borrowed from the container.
            let item = unsafe {
                if self.is_tuple {
                    ffi::PyTuple_GetItem(self.items.as_ptr(), index as ffi::Py_ssize_t)
                } else {
                    ffi::PyList_GetItem(self.items.as_ptr(), index as ffi::Py_ssize_t)
                }
            };
            if item.is_null() {
                return Err(PyErr::fetch(py));
            }
            // SAFETY: `item` is a live object (see above).
            if unsafe { ffi::PyUnicode_Check(item) } == 0 {
                // SAFETY: as above; the borrow ends before this function returns.
                let item = unsafe { Borrowed::from_ptr(py, item) };
                return Err(not_str(&item, what));
            }
            let mut size: ffi::Py_ssize_t = 0;
            // SAFETY: `item` is a str; its UTF-8 buffer lives as long as it does, and is
            // copied before the GIL is released.
            let data = unsafe { ffi::PyUnicode_AsUTF8AndSize(item, &mut size) };
            if data.is_null() {
                return Err(PyErr::fetch(py)); // UnicodeEncodeError: a lone surrogate
            }
            // SAFETY: CPython guarantees `size` readable bytes at `data`.
            let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size as usize) };
            chunk.bytes.extend_from_slice(bytes);
            chunk.ends.push(chunk.bytes.len());
        }
        Ok(chunk)
    }

    /// Every key in one chunk (for small batches such as host lists).
    pub fn read_all(&self, what: &str) -> PyResult<KeyChunk> {
        self.read(0, self.len, what)
    }
}

/// Runs `work(keys, out)` over the whole batch, `out` having one slot per key, overlapping
/// the reading of keys (with the GIL) with `work` on other threads (without it).
pub fn run_pipelined<T, F>(
    py: Python<'_>,
    source: &KeySource<'_>,
    what: &str,
    out: &mut [T],
    work: F,
) -> PyResult<()>
where
    T: Send,
    F: Fn(&[&[u8]], &mut [T]) + Sync,
{
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    if source.len() <= CHUNK_KEYS || workers < 2 {
        let chunk = source.read_all(what)?;
        py.detach(|| work(&chunk.keys(), out));
        return Ok(());
    }
    let (sender, receiver) = mpsc::channel::<(KeyChunk, &mut [T])>();
    let receiver = Mutex::new(receiver);
    let drain = || loop {
        // The lock is held only to take the next chunk off the queue.
        let next = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
        match next {
            Ok((chunk, out)) => work(&chunk.keys(), out),
            Err(mpsc::RecvError) => return, // every chunk read and taken
        }
    };
    std::thread::scope(|scope| {
        // One core keeps reading keys; the others work until it joins them.
        for _ in 1..workers {
            scope.spawn(drain);
        }
        let mut read = Ok(());
        for (number, slots) in out.chunks_mut(CHUNK_KEYS).enumerate() {
            let start = number * CHUNK_KEYS;
            match source.read(start, start + slots.len(), what) {
                Ok(chunk) => sender
                    .send((chunk, slots))
                    .expect("workers outlive the sender"),
                Err(err) => {
                    read = Err(err);
                    break;
                }
            }
        }
        drop(sender);
        py.detach(drain);
        read
    })
}
