//! [`InvalidValue`]: why a raw value was rejected.

/// Why a raw value was rejected, phrased to complete "<field> …".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub &'static str);
