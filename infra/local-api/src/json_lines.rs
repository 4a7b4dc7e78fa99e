//! An optional file that records are appended to as JSON lines, so that
//! several local APIs (one per test) can add to one record.

use std::io::Write as _;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

/// A JSON-lines file, or nowhere.
#[derive(Debug, Default)]
pub struct JsonLines(Option<Mutex<std::fs::File>>);

impl JsonLines {
    /// Appends to `path`, created if missing; nowhere when `None`.
    pub fn open(path: Option<&Path>) -> std::io::Result<Self> {
        let file = match path {
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )),
            None => None,
        };
        Ok(Self(file))
    }

    /// Appends `record` as one line (one write, so concurrent writers do
    /// not interleave). A failed write is dropped: the record in memory
    /// stays authoritative.
    pub fn append(&self, record: &impl Serialize) {
        if let Some(file) = &self.0
            && let Ok(mut line) = serde_json::to_vec(record)
        {
            line.push(b'\n');
            let _ = file
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .write_all(&line);
        }
    }
}
