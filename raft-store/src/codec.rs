//! Byte layouts shared by the stores: log keys, JSON values, and the stored snapshot.

use std::io;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{SnapshotData, SnapshotMeta};

pub fn to_json<T: Serialize + ?Sized>(v: &T) -> io::Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

pub fn from_json<T: DeserializeOwned>(b: &[u8]) -> io::Result<T> {
    serde_json::from_slice(b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

pub fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// A stored snapshot: 8-byte big-endian length of the JSON meta, the meta, then the data as is
/// (the data is already JSON; wrapping it again would double its size).
pub fn encode_snapshot(meta: &SnapshotMeta, data: &[u8]) -> io::Result<Vec<u8>> {
    let meta = to_json(meta)?;
    let mut out = Vec::with_capacity(8 + meta.len() + data.len());
    out.extend_from_slice(&(meta.len() as u64).to_be_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(data);
    Ok(out)
}

pub fn decode_snapshot(bytes: &[u8]) -> io::Result<(SnapshotMeta, SnapshotData)> {
    let len = bytes.get(..8).ok_or_else(|| invalid("stored snapshot shorter than its header"))?;
    let len = u64::from_be_bytes(len.try_into().expect("8 bytes")) as usize;
    let meta = bytes.get(8..8 + len).ok_or_else(|| invalid("stored snapshot meta truncated"))?;
    Ok((from_json(meta)?, bytes[8 + len..].to_vec()))
}
