//! Miroir's deterministic simulations (madsim). Everything here builds only with
//! `RUSTFLAGS="--cfg madsim"`: see docs/simulation.md.
#![cfg(madsim)]

pub mod cluster;
pub mod net;
pub mod seeds;
