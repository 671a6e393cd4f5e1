//! Placement hashing for daprplane. The algorithm is plain Rust (`hash`, `ring`); the Python
//! binding is compiled only with the `python` feature.

#[cfg(feature = "python")]
mod batch;
pub mod hash;
mod parallel;
pub mod ring;

#[cfg(feature = "python")]
mod python {
    //! The `daprplane.ring._ring_rs` extension module: a thin binding over `crate::ring`.
    //!
    //! The ring is shared copy-on-write (`RwLock<Arc<Ring>>`): a call takes a snapshot, an
    //! `Arc`, and lets go of the lock at once, so batch calls can release the GIL without
    //! holding any lock, and a change made meanwhile copies the ring instead of waiting.

    use std::sync::{Arc, RwLock};

    use pyo3::exceptions::{PyKeyError, PyOverflowError, PyValueError};
    use pyo3::prelude::*;
    use pyo3::types::{PyDict, PyList, PyString, PyTuple};

    use crate::batch::{not_str, run_pipelined, KeySource};
    use crate::hash;
    use crate::ring::{self, Ring, RingError};

    pyo3::import_exception!(daprplane.ring._errors, NoHostsError);

    fn to_py_err(err: RingError) -> PyErr {
        match err {
            RingError::NoHosts => NoHostsError::new_err(err.to_string()),
            RingError::InvalidReplicationFactor(_) => PyValueError::new_err(err.to_string()),
            RingError::UnknownHost(host) => PyKeyError::new_err(host),
            RingError::LoadOverflow(_) => PyOverflowError::new_err(err.to_string()),
        }
    }

    /// The argument as `&str`; `what` names it in the error.
    fn as_str<'a>(obj: &'a Bound<'_, PyAny>, what: &str) -> PyResult<&'a str> {
        obj.cast::<PyString>()
            .map_err(|_| not_str(obj, what))?
            .to_str()
    }

    /// Dapr's actor-placement ring. See `daprplane.ring` for the full contract.
    #[pyclass(name = "Ring", module = "daprplane.ring._ring_rs", frozen)]
    struct PyRing {
        shared: RwLock<Arc<Ring>>,
    }

    impl PyRing {
        /// The ring as it is now, unaffected by later changes.
        fn snapshot(&self) -> Arc<Ring> {
            // A panic while the lock was held cannot leave a half-changed ring behind: every
            // change builds its new table before swapping it in.
            Arc::clone(&self.shared.read().unwrap_or_else(|e| e.into_inner()))
        }

        fn change<R>(&self, edit: impl FnOnce(&mut Ring) -> R) -> R {
            let mut shared = self.shared.write().unwrap_or_else(|e| e.into_inner());
            edit(Arc::make_mut(&mut shared))
        }
    }

    #[pymethods]
    impl PyRing {
        #[classattr]
        fn implementation() -> &'static str {
            "rust"
        }

        #[new]
        #[pyo3(signature = (hosts = None, replication_factor = ring::DEFAULT_REPLICATION_FACTOR as i64))]
        fn new(
            py: Python<'_>,
            hosts: Option<&Bound<'_, PyAny>>,
            replication_factor: i64,
        ) -> PyResult<Self> {
            let names = match hosts {
                Some(hosts) => KeySource::new(hosts, "hosts")?.read_all("host")?,
                None => Default::default(),
            };
            let ring = py
                .detach(|| Ring::with_hosts(names.strs(), replication_factor))
                .map_err(to_py_err)?;
            Ok(Self {
                shared: RwLock::new(Arc::new(ring)),
            })
        }

        #[getter]
        fn replication_factor(&self) -> u32 {
            self.snapshot().replication_factor()
        }

        /// Host names, sorted.
        #[getter]
        fn hosts(&self) -> Vec<String> {
            self.snapshot()
                .hosts()
                .into_iter()
                .map(str::to_owned)
                .collect()
        }

        fn __len__(&self) -> usize {
            self.snapshot().len()
        }

        fn __contains__(&self, host: &Bound<'_, PyAny>) -> bool {
            as_str(host, "host").is_ok_and(|host| self.snapshot().contains(host))
        }

        fn __repr__(&self) -> String {
            let ring = self.snapshot();
            format!(
                "Ring(implementation='rust', hosts={}, replication_factor={})",
                ring.len(),
                ring.replication_factor()
            )
        }

        /// Adds a host; False if it was already there.
        fn add(&self, py: Python<'_>, host: &Bound<'_, PyAny>) -> PyResult<bool> {
            let host = as_str(host, "host")?;
            Ok(py.detach(|| self.change(|ring| ring.add(host))))
        }

        /// Removes a host and its load; False if it was not there.
        fn remove(&self, py: Python<'_>, host: &Bound<'_, PyAny>) -> PyResult<bool> {
            let host = as_str(host, "host")?;
            Ok(py.detach(|| self.change(|ring| ring.remove(host))))
        }

        /// The host that owns `key`.
        fn lookup(&self, key: &Bound<'_, PyAny>) -> PyResult<String> {
            let key = as_str(key, "key")?;
            self.snapshot()
                .lookup(key)
                .map(str::to_owned)
                .map_err(to_py_err)
        }

        /// The owners of many keys, in order.
        fn lookup_many<'py>(
            &self,
            py: Python<'py>,
            keys: &Bound<'py, PyAny>,
        ) -> PyResult<Bound<'py, PyList>> {
            let ring = self.snapshot();
            let source = KeySource::new(keys, "keys")?;
            if ring.is_empty() {
                source.read_all("key")?; // bad keys are reported first, as in Python
                return Err(to_py_err(RingError::NoHosts));
            }
            let mut ids = vec![0u32; source.len()];
            run_pipelined(py, &source, "key", &mut ids, |keys, ids| {
                ring.lookup_ids_into(keys, ids).expect("the ring has hosts");
            })?;
            // One str object per host, shared by every key it owns.
            let mut names: Vec<Option<Bound<'py, PyString>>> = vec![None; ring.len()];
            let owners = ids.into_iter().map(|id| {
                names[id as usize]
                    .get_or_insert_with(|| PyString::new(py, ring.host_name(id)))
                    .clone()
            });
            PyList::new(py, owners)
        }

        /// The vnode table: (sorted hashes, owner of each).
        fn vnodes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
            let ring = self.snapshot();
            let (hashes, owners) = ring.vnodes();
            let hashes = PyList::new(py, hashes)?;
            let owners = PyList::new(py, owners)?;
            PyTuple::new(py, [hashes.into_any(), owners.into_any()])
        }

        /// The owner of `key` under bounded loads.
        fn get_least(&self, key: &Bound<'_, PyAny>) -> PyResult<String> {
            let key = as_str(key, "key")?;
            self.snapshot()
                .get_least(key)
                .map(str::to_owned)
                .map_err(to_py_err)
        }

        /// Dapr's `Inc`: one more unit of load on `host`.
        fn inc_load(&self, host: &Bound<'_, PyAny>) -> PyResult<()> {
            let host = as_str(host, "host")?;
            self.change(|ring| ring.add_load(host, 1))
                .map_err(to_py_err)
        }

        /// Dapr's `Done`: one unit of load less on `host`.
        fn done(&self, host: &Bound<'_, PyAny>) -> PyResult<()> {
            let host = as_str(host, "host")?;
            self.change(|ring| ring.add_load(host, -1))
                .map_err(to_py_err)
        }

        /// Sets the load of `host` (an int64).
        fn update_load(&self, host: &Bound<'_, PyAny>, load: i64) -> PyResult<()> {
            let host = as_str(host, "host")?;
            self.change(|ring| ring.update_load(host, load))
                .map_err(to_py_err)
        }

        /// Every host's load, keyed by host name in sorted order.
        fn get_load<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
            let ring = self.snapshot();
            let dict = PyDict::new(py);
            for (host, load) in ring.loads() {
                dict.set_item(host, load)?;
            }
            Ok(dict)
        }

        #[getter]
        fn total_load(&self) -> i128 {
            self.snapshot().total_load()
        }

        /// The bounded-load limit: a host takes a key while `load + 1 <= max_load()`.
        fn max_load(&self) -> i128 {
            self.snapshot().max_load()
        }
    }

    /// The placement hash of one key.
    #[pyfunction]
    fn hash_key(key: &Bound<'_, PyAny>) -> PyResult<u64> {
        Ok(hash::hash_key(as_str(key, "key")?.as_bytes()))
    }

    /// The placement hashes of many keys, in order.
    #[pyfunction]
    fn hash_many<'py>(py: Python<'py>, keys: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let source = KeySource::new(keys, "keys")?;
        let mut hashes = vec![0u64; source.len()];
        run_pipelined(py, &source, "key", &mut hashes, |keys, out| {
            hash::hash_into(keys, out)
        })?;
        PyList::new(py, hashes)
    }

    #[pymodule]
    fn _ring_rs(module: &Bound<'_, PyModule>) -> PyResult<()> {
        module.add("__version__", env!("CARGO_PKG_VERSION"))?;
        module.add("IMPLEMENTATION", "rust")?;
        module.add(
            "DEFAULT_REPLICATION_FACTOR",
            ring::DEFAULT_REPLICATION_FACTOR,
        )?;
        module.add_class::<PyRing>()?;
        module.add_function(wrap_pyfunction!(hash_key, module)?)?;
        module.add_function(wrap_pyfunction!(hash_many, module)?)?;
        Ok(())
    }
}
