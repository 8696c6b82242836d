//! Miroir simulation and end-to-end test support: a harness that runs a whole cluster as real
//! processes, and the in-process cluster of the differential tests.

#[cfg(not(madsim))]
pub mod harness;

#[cfg(not(madsim))]
pub mod in_process;

pub mod rng;
