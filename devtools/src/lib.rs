//! Tools around a Miroir cluster for tests, local use and benchmarks: a harness that runs a whole
//! cluster as real processes on loopback (`harness`, behind `miroir-dev` and `miroir-bench-index`),
//! the in-process cluster the differential tests compare with one node (`in_process`), and a
//! deterministic generator for generated tests (`rng`).

pub mod harness;
pub mod in_process;
pub mod rng;
