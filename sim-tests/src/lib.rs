//! Miroir simulation and end-to-end tests (not built yet).
