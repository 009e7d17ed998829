//! Turning rusqlite errors into [`StoreError`]s that say what happened.

use rusqlite::ErrorCode;

use crate::StoreError;

/// Maps an error from the database at `db` (a path, or `:memory:`).
///
/// Conditions an operator can fix (disk full, read-only files, I/O errors,
/// a file that cannot be opened, a lock held too long) become
/// [`StoreError::Unavailable`]; values that cannot be decoded and damaged
/// database files become [`StoreError::Corrupt`]. Anything else is a bug or
/// an unexpected condition and is reported as `Unavailable` with SQLite's
/// own message, so that the server answers 503 rather than a wrong result.
pub(crate) fn map(db: &str, err: rusqlite::Error) -> StoreError {
    use rusqlite::Error as E;
    match err {
        E::SqliteFailure(failure, message) => {
            let (corrupt, what) = describe(failure.code);
            let mut detail = match message {
                Some(msg) if !msg.is_empty() && msg != what => format!("{what} ({db}): {msg}"),
                _ => format!("{what} ({db})"),
            };
            if failure.code == ErrorCode::SystemIoFailure {
                // SQLite says "disk I/O error" whatever the system refused;
                // find out whether the file can still be written, and why not.
                if let Some(why) = why_unwritable(db) {
                    detail.push_str(&format!(": the database file cannot be written: {why}"));
                }
            }
            if corrupt {
                StoreError::Corrupt(detail)
            } else {
                StoreError::Unavailable(detail)
            }
        }
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::Utf8Error(..)
        | E::InvalidColumnType(..) => StoreError::Corrupt(format!("{err} ({db})")),
        other => StoreError::Unavailable(format!("sqlite error ({db}): {other}")),
    }
}

/// Why the database file at `db` cannot be opened for writing, if it cannot.
fn why_unwritable(db: &str) -> Option<String> {
    if db == ":memory:" {
        return None;
    }
    let dir = std::path::Path::new(db).parent().filter(|d| !d.as_os_str().is_empty());
    let file =
        std::fs::OpenOptions::new().append(true).open(db).err().filter(|e| e.kind() != std::io::ErrorKind::NotFound);
    let dir_probe = dir.map(|d| d.join(".sl-write-probe")).and_then(|probe| {
        let r = std::fs::OpenOptions::new().create(true).truncate(true).write(true).open(&probe);
        let _ = std::fs::remove_file(&probe);
        r.err().filter(|e| e.kind() != std::io::ErrorKind::NotFound)
    });
    match (file, dir_probe) {
        (Some(e), _) => Some(e.to_string()),
        (None, Some(e)) => Some(format!("its directory refuses new files: {e}")),
        (None, None) => None,
    }
}

/// Whether a failure means a damaged database, and what it means in words.
fn describe(code: ErrorCode) -> (bool, &'static str) {
    match code {
        ErrorCode::DiskFull => (false, "database or disk is full"),
        ErrorCode::ReadOnly => (false, "database is read-only"),
        ErrorCode::SystemIoFailure => (false, "disk I/O error"),
        ErrorCode::CannotOpen => (false, "unable to open database file"),
        ErrorCode::PermissionDenied => (false, "permission denied"),
        ErrorCode::DatabaseBusy => (false, "database is locked by another connection"),
        ErrorCode::DatabaseLocked => (false, "database table is locked"),
        ErrorCode::FileLockingProtocolFailed => (false, "file locking protocol failed"),
        ErrorCode::OutOfMemory => (false, "out of memory"),
        ErrorCode::NoLargeFileSupport => (false, "large files are not supported here"),
        ErrorCode::DatabaseCorrupt => (true, "database disk image is malformed"),
        ErrorCode::NotADatabase => (true, "file is not a database"),
        ErrorCode::TooBig => (false, "string or blob too big"),
        ErrorCode::ConstraintViolation => (false, "constraint failed"),
        _ => (false, "sqlite error"),
    }
}

/// Whether `err` is a uniqueness (or primary key) violation.
pub(crate) fn is_unique_violation(err: &rusqlite::Error) -> bool {
    match err {
        rusqlite::Error::SqliteFailure(failure, _) => {
            failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    fn failure(code: i32, msg: Option<&str>) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), msg.map(str::to_owned))
    }

    fn unavailable(err: StoreError) -> String {
        match err {
            StoreError::Unavailable(msg) => msg,
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[test]
    fn operational_failures_are_unavailable_and_name_the_file() {
        let cases = [
            (ffi::SQLITE_FULL, "database or disk is full"),
            (ffi::SQLITE_READONLY, "read-only"),
            (ffi::SQLITE_READONLY_DBMOVED, "read-only"),
            (ffi::SQLITE_IOERR, "disk I/O error"),
            (ffi::SQLITE_IOERR_WRITE, "disk I/O error"),
            (ffi::SQLITE_CANTOPEN, "unable to open"),
            (ffi::SQLITE_BUSY, "locked"),
            (ffi::SQLITE_LOCKED, "locked"),
            (ffi::SQLITE_PERM, "permission denied"),
            (ffi::SQLITE_NOMEM, "out of memory"),
        ];
        for (code, words) in cases {
            let msg = unavailable(map("data/sl.db", failure(code, None)));
            assert!(msg.contains(words), "code {code}: {msg}");
            assert!(msg.contains("(data/sl.db)"), "code {code}: {msg}");
        }
    }

    #[test]
    fn disk_full_message_reads_well() {
        let msg = unavailable(map("data/sl.db", failure(ffi::SQLITE_FULL, Some("database or disk is full"))));
        assert_eq!(msg, "database or disk is full (data/sl.db)");
        let err = map("data/sl.db", failure(ffi::SQLITE_FULL, None));
        assert_eq!(err.to_string(), "store unavailable: database or disk is full (data/sl.db)");
    }

    #[test]
    fn sqlite_detail_is_kept_when_it_adds_something() {
        let msg = unavailable(map("x.db", failure(ffi::SQLITE_IOERR_FSYNC, Some("disk I/O error: fsync failed"))));
        assert_eq!(msg, "disk I/O error (x.db): disk I/O error: fsync failed");
    }

    #[test]
    fn damaged_files_and_undecodable_values_are_corrupt() {
        for code in [ffi::SQLITE_CORRUPT, ffi::SQLITE_NOTADB] {
            assert!(matches!(map("x.db", failure(code, None)), StoreError::Corrupt(_)), "code {code}");
        }
        let conversion = rusqlite::Error::InvalidColumnType(3, "status".into(), rusqlite::types::Type::Blob);
        assert!(matches!(map("x.db", conversion), StoreError::Corrupt(_)));
        let range = rusqlite::Error::IntegralValueOutOfRange(1, -1);
        assert!(matches!(map("x.db", range), StoreError::Corrupt(_)));
    }

    #[test]
    fn other_errors_are_unavailable() {
        let msg = unavailable(map("x.db", failure(ffi::SQLITE_ERROR, Some("no such table: nope"))));
        assert!(msg.contains("no such table: nope"), "{msg}");
        let msg = unavailable(map("x.db", rusqlite::Error::QueryReturnedNoRows));
        assert!(msg.contains("x.db"), "{msg}");
    }

    #[test]
    fn unique_violations_are_recognised() {
        assert!(is_unique_violation(&failure(ffi::SQLITE_CONSTRAINT_PRIMARYKEY, None)));
        assert!(is_unique_violation(&failure(ffi::SQLITE_CONSTRAINT_UNIQUE, None)));
        assert!(!is_unique_violation(&failure(ffi::SQLITE_CONSTRAINT_NOTNULL, None)));
        assert!(!is_unique_violation(&failure(ffi::SQLITE_FULL, None)));
    }
}
