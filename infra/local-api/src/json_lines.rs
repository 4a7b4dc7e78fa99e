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

/// Records kept in memory (the latest `limit`, if given) and appended to a
/// JSON-lines file when one is given: what the local API received, for
/// tests to read and people to keep.
#[derive(Debug, Default)]
pub struct KeptRecords {
    kept: Mutex<Vec<serde_json::Value>>,
    file: JsonLines,
    limit: Option<usize>,
}

impl KeptRecords {
    /// Kept in memory, and appended to `path` if given.
    pub fn new(path: Option<&Path>, limit: Option<usize>) -> std::io::Result<Self> {
        Ok(Self {
            kept: Mutex::default(),
            file: JsonLines::open(path)?,
            limit,
        })
    }

    /// Every record kept so far, oldest first.
    pub fn all(&self) -> Vec<serde_json::Value> {
        self.kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Keeps `records` and appends them to the file.
    pub fn extend(&self, records: Vec<serde_json::Value>) {
        for record in &records {
            self.file.append(record);
        }
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.extend(records);
        if let Some(limit) = self.limit {
            let excess = kept.len().saturating_sub(limit);
            kept.drain(..excess);
        }
    }
}
