//! openraft storage for Miroir.
