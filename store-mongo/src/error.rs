//! Driver errors as [`StoreError`]s.

use mongodb::error::{Error, ErrorKind, WriteFailure};
use sl_store::StoreError;

/// MongoDB's code for a duplicate key in a unique index (nx-27017 uses the
/// same code with a different message).
pub(crate) const DUPLICATE_KEY: i32 = 11000;

/// A stored document that does not decode into a record.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("{what}: field `{field}` is missing")]
    Missing { what: String, field: &'static str },
    #[error("{what}: field `{field}` {problem}")]
    Invalid { what: String, field: &'static str, problem: String },
}

impl From<DecodeError> for StoreError {
    fn from(err: DecodeError) -> Self {
        StoreError::Corrupt(err.to_string())
    }
}

/// Maps a driver error. Everything that is not a decoding problem means the
/// database cannot serve the call (it is down, unreachable, timed out,
/// refused the command): the server answers 503 and retries later.
pub(crate) fn map(err: Error) -> StoreError {
    match &*err.kind {
        ErrorKind::BsonDeserialization(_) | ErrorKind::InvalidResponse { .. } => {
            StoreError::Corrupt(format!("MongoDB returned a document that does not decode: {}", err.kind))
        }
        ErrorKind::Command(e) => StoreError::Unavailable(format!(
            "MongoDB refused the call: {} ({}, code {})",
            e.message, e.code_name, e.code
        )),
        ErrorKind::Write(WriteFailure::WriteError(e)) => {
            StoreError::Unavailable(format!("MongoDB refused the write: {} (code {})", e.message, e.code))
        }
        ErrorKind::Write(WriteFailure::WriteConcernError(e)) => StoreError::Unavailable(format!(
            "MongoDB could not satisfy the write concern: {} (code {})",
            e.message, e.code
        )),
        // ServerSelection (down, unreachable, no primary), Io (connection
        // refused or reset, timeouts), ConnectionPoolCleared, DnsResolve,
        // Authentication, Shutdown, ...
        kind => StoreError::Unavailable(format!("MongoDB unavailable: {kind}")),
    }
}

/// Whether `err` is a duplicate key in a unique index.
pub(crate) fn is_duplicate_key(err: &Error) -> bool {
    match &*err.kind {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == DUPLICATE_KEY,
        ErrorKind::Command(e) => e.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(e) => {
            e.write_errors.as_ref().is_some_and(|errors| errors.iter().any(|e| e.code == DUPLICATE_KEY))
        }
        _ => false,
    }
}

/// The indexes, in an `insertMany` call, of the documents refused for a
/// duplicate key; `None` when the call failed for another reason too.
pub(crate) fn duplicate_indexes(err: &Error) -> Option<Vec<usize>> {
    match &*err.kind {
        ErrorKind::InsertMany(e) if e.write_concern_error.is_none() => {
            let errors = e.write_errors.as_ref()?;
            errors.iter().all(|e| e.code == DUPLICATE_KEY).then(|| errors.iter().map(|e| e.index).collect())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_unavailable() {
        let err = Error::from(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"));
        match map(err) {
            StoreError::Unavailable(msg) => {
                assert!(msg.starts_with("MongoDB unavailable: ") && msg.contains("refused"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decode_errors_are_corrupt_and_name_the_field() {
        let err: StoreError = DecodeError::Missing { what: "invocation x".into(), field: "status" }.into();
        assert_eq!(err.to_string(), "corrupt record: invocation x: field `status` is missing");
    }
}
