//! How records are laid out in SQLite rows, both ways.
//!
//! JSON values are stored as text. Unsigned 64-bit counters are stored as
//! the `INTEGER` with the same bits, so that every `u64` survives the trip
//! (values above `i64::MAX` read as negative numbers in the sqlite3 shell).
//!
//! An action's source is written as a `BLOB`, its exact bytes (Lua source
//! need not be UTF-8). The column keeps the `TEXT` type of schema version 1,
//! which stores a blob as it is; rows written by versions that stored the
//! source as `TEXT` read as the bytes of that text.

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::Row;

use crate::{
    ActionMeta, ActionRecord, InvocationError, InvocationRecord, InvocationStatus, JsonArgs, Limits, RouteRecord,
    StoreError,
};

/// Columns of [`ActionRecord`] in the order [`action`] reads them.
pub(crate) const ACTION_COLUMNS: &str =
    "name, version, source, bytecode, checksum, maxmem, timeout, instructions, created, updated";

/// Columns of [`ActionMeta`] in the order [`action_meta`] reads them.
pub(crate) const ACTION_META_COLUMNS: &str =
    "name, version, length(bytecode), maxmem, timeout, instructions, created, updated";

/// Columns of [`InvocationRecord`] in the order [`Invocation::read`] reads
/// them and [`Invocation::values`] writes them.
pub(crate) const INVOCATION_COLUMNS: &str = "id, action, version, status, is_async, args, result, error_kind, \
     error_message, logs, created, started, finished, duration_ms, instructions, peak_memory, attempts, owner, \
     lease_until, caller";

/// Number of columns in [`INVOCATION_COLUMNS`].
pub(crate) const INVOCATION_COLUMN_COUNT: usize = 20;

fn u64_to_db(value: u64) -> i64 {
    value as i64
}

fn u64_from_db(value: i64) -> u64 {
    value as u64
}

/// The values to bind for an action, in [`ACTION_COLUMNS`] order.
pub(crate) fn action_values(action: &ActionRecord) -> [Value; 10] {
    [
        Value::Text(action.name.clone()),
        Value::Integer(action.version),
        Value::Blob(action.source.clone()),
        Value::Blob(action.bytecode.clone()),
        Value::Text(action.checksum.clone()),
        Value::Integer(u64_to_db(action.limits.maxmem)),
        Value::Integer(u64_to_db(action.limits.timeout)),
        Value::Integer(u64_to_db(action.limits.instructions)),
        Value::Integer(action.created),
        Value::Integer(action.updated),
    ]
}

fn limits(row: &Row<'_>, first: usize) -> rusqlite::Result<Limits> {
    Ok(Limits {
        maxmem: u64_from_db(row.get(first)?),
        timeout: u64_from_db(row.get(first + 1)?),
        instructions: u64_from_db(row.get(first + 2)?),
    })
}

/// The source in column `index`: a `BLOB`, or the `TEXT` older versions wrote.
fn source(row: &Row<'_>, index: usize) -> rusqlite::Result<Vec<u8>> {
    match row.get_ref(index)? {
        ValueRef::Blob(bytes) | ValueRef::Text(bytes) => Ok(bytes.to_vec()),
        other => Err(rusqlite::Error::InvalidColumnType(index, "source".into(), other.data_type())),
    }
}

/// Reads a row selected with [`ACTION_COLUMNS`].
pub(crate) fn action(row: &Row<'_>) -> rusqlite::Result<ActionRecord> {
    Ok(ActionRecord {
        name: row.get(0)?,
        version: row.get(1)?,
        source: source(row, 2)?,
        bytecode: row.get(3)?,
        checksum: row.get(4)?,
        limits: limits(row, 5)?,
        created: row.get(8)?,
        updated: row.get(9)?,
    })
}

/// Reads a row selected with [`ACTION_META_COLUMNS`].
pub(crate) fn action_meta(row: &Row<'_>) -> rusqlite::Result<ActionMeta> {
    Ok(ActionMeta {
        name: row.get(0)?,
        version: row.get(1)?,
        size: row.get(2)?,
        limits: limits(row, 3)?,
        created: row.get(6)?,
        updated: row.get(7)?,
    })
}

/// Columns of [`RouteRecord`] in the order [`route`] reads them and
/// [`route_values`] writes them.
pub(crate) const ROUTE_COLUMNS: &str = "method, host, path, action, created";

/// The values to bind for a route, in [`ROUTE_COLUMNS`] order.
pub(crate) fn route_values(route: &RouteRecord) -> [Value; 5] {
    [
        Value::Text(route.method.clone()),
        Value::Text(route.host.clone()),
        Value::Text(route.path.clone()),
        Value::Text(route.action.clone()),
        Value::Integer(route.created),
    ]
}

/// Reads a row selected with [`ROUTE_COLUMNS`].
pub(crate) fn route(row: &Row<'_>) -> rusqlite::Result<RouteRecord> {
    Ok(RouteRecord {
        method: row.get(0)?,
        host: row.get(1)?,
        path: row.get(2)?,
        action: row.get(3)?,
        created: row.get(4)?,
    })
}

/// An invocation row as stored, before its text columns are decoded.
pub(crate) struct Invocation {
    id: String,
    action: String,
    version: i64,
    status: String,
    is_async: bool,
    args: String,
    result: Option<String>,
    error_kind: Option<String>,
    error_message: Option<String>,
    logs: String,
    created: i64,
    started: Option<i64>,
    finished: Option<i64>,
    duration_ms: Option<i64>,
    instructions: Option<i64>,
    peak_memory: Option<i64>,
    attempts: i64,
    owner: Option<String>,
    lease_until: Option<i64>,
    caller: Option<String>,
}

impl Invocation {
    /// Reads the [`INVOCATION_COLUMNS`] starting at column `first`.
    pub(crate) fn read(row: &Row<'_>, first: usize) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(first)?,
            action: row.get(first + 1)?,
            version: row.get(first + 2)?,
            status: row.get(first + 3)?,
            is_async: row.get(first + 4)?,
            args: row.get(first + 5)?,
            result: row.get(first + 6)?,
            error_kind: row.get(first + 7)?,
            error_message: row.get(first + 8)?,
            logs: row.get(first + 9)?,
            created: row.get(first + 10)?,
            started: row.get(first + 11)?,
            finished: row.get(first + 12)?,
            duration_ms: row.get(first + 13)?,
            instructions: row.get(first + 14)?,
            peak_memory: row.get(first + 15)?,
            attempts: row.get(first + 16)?,
            owner: row.get(first + 17)?,
            lease_until: row.get(first + 18)?,
            caller: row.get(first + 19)?,
        })
    }

    /// The values to bind for `rec`, in [`INVOCATION_COLUMNS`] order: its
    /// text borrowed (SQLite copies what is bound), the result encoded.
    pub(crate) fn values(rec: &InvocationRecord) -> Result<[ToSqlOutput<'_>; INVOCATION_COLUMN_COUNT], StoreError> {
        let int = |value: i64| ToSqlOutput::Owned(Value::Integer(value));
        let opt_int = |value: Option<i64>| ToSqlOutput::Owned(value.map_or(Value::Null, Value::Integer));
        let opt_u64 = |value: Option<u64>| opt_int(value.map(u64_to_db));
        fn text(value: &str) -> ToSqlOutput<'_> {
            ToSqlOutput::Borrowed(ValueRef::Text(value.as_bytes()))
        }
        fn opt_text(value: Option<&str>) -> ToSqlOutput<'_> {
            value.map_or(ToSqlOutput::Owned(Value::Null), text)
        }
        let result = match &rec.result {
            Some(result) => ToSqlOutput::Owned(Value::Text(serde_json::to_string(result).map_err(|err| {
                // Only a map with non-string keys can fail, and a
                // `serde_json::Value` has none; say so if it ever happens.
                StoreError::Corrupt(format!("invocation '{}': cannot encode result: {err}", rec.id))
            })?)),
            None => ToSqlOutput::Owned(Value::Null),
        };
        Ok([
            text(&rec.id),
            text(&rec.action),
            int(rec.version),
            text(rec.status.as_str()),
            int(rec.is_async.into()),
            text(rec.args.as_str()),
            result,
            opt_text(rec.error.as_ref().map(|e| e.kind.as_str())),
            opt_text(rec.error.as_ref().map(|e| e.message.as_str())),
            text(&rec.logs),
            int(rec.created),
            opt_int(rec.started),
            opt_int(rec.finished),
            opt_u64(rec.duration_ms),
            opt_u64(rec.instructions),
            opt_u64(rec.peak_memory),
            int(rec.attempts.into()),
            opt_text(rec.owner.as_deref()),
            opt_int(rec.lease_until),
            opt_text(rec.caller.as_deref()),
        ])
    }

    /// [`values`](Self::values), and the record's
    /// [`stored_size`](InvocationRecord::stored_size) from the JSON encoded
    /// there.
    #[allow(clippy::type_complexity)]
    pub(crate) fn values_and_size(
        rec: &InvocationRecord,
    ) -> Result<([ToSqlOutput<'_>; INVOCATION_COLUMN_COUNT], u64), StoreError> {
        let values = Self::values(rec)?;
        let result_len = match &values[6] {
            ToSqlOutput::Owned(Value::Text(text)) => text.len(),
            _ => 0,
        };
        let size = rec.stored_size_with(result_len);
        Ok((values, size))
    }

    /// Decodes the text columns, naming the record in any error.
    pub(crate) fn decode(self) -> Result<InvocationRecord, StoreError> {
        let id = self.id;
        let corrupt = |what: String| StoreError::Corrupt(format!("invocation '{id}': {what}"));
        let status = InvocationStatus::parse(&self.status)
            .ok_or_else(|| corrupt(format!("unknown status '{}'", self.status)))?;
        let args = JsonArgs::parse(self.args).map_err(|err| corrupt(format!("args are not JSON: {err}")))?;
        let result = match self.result {
            Some(text) => {
                Some(serde_json::from_str(&text).map_err(|err| corrupt(format!("result is not JSON: {err}")))?)
            }
            None => None,
        };
        let error = match (self.error_kind, self.error_message) {
            (Some(kind), Some(message)) => Some(InvocationError { kind, message }),
            (None, None) => None,
            _ => return Err(corrupt("error has a kind or a message but not both".into())),
        };
        let attempts =
            u32::try_from(self.attempts).map_err(|_| corrupt(format!("attempts out of range: {}", self.attempts)))?;
        Ok(InvocationRecord {
            id,
            action: self.action,
            version: self.version,
            status,
            is_async: self.is_async,
            args,
            result,
            error,
            logs: self.logs,
            created: self.created,
            started: self.started,
            finished: self.finished,
            duration_ms: self.duration_ms.map(u64_from_db),
            instructions: self.instructions.map(u64_from_db),
            peak_memory: self.peak_memory.map(u64_from_db),
            attempts,
            owner: self.owner,
            lease_until: self.lease_until,
            caller: self.caller,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_lists_match_their_readers() {
        assert_eq!(ACTION_COLUMNS.split(',').count(), 10);
        assert_eq!(ACTION_META_COLUMNS.split(',').count(), 8);
        assert_eq!(ROUTE_COLUMNS.split(',').count(), 5);
        assert_eq!(INVOCATION_COLUMNS.split(',').count(), INVOCATION_COLUMN_COUNT);
    }

    #[test]
    fn every_u64_survives_the_integer_column() {
        for value in [0, 1, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX] {
            assert_eq!(u64_from_db(u64_to_db(value)), value);
        }
    }

    fn raw() -> Invocation {
        Invocation {
            id: "inv-1".into(),
            action: "a".into(),
            version: 1,
            status: "queued".into(),
            is_async: true,
            args: "{}".into(),
            result: None,
            error_kind: None,
            error_message: None,
            logs: String::new(),
            created: 5,
            started: None,
            finished: None,
            duration_ms: None,
            instructions: None,
            peak_memory: None,
            attempts: 0,
            owner: None,
            lease_until: None,
            caller: None,
        }
    }

    fn corrupt_message(raw: Invocation) -> String {
        match raw.decode() {
            Err(StoreError::Corrupt(msg)) => msg,
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_row_decodes() {
        let rec = raw().decode().unwrap();
        assert_eq!(rec.status, InvocationStatus::Queued);
        assert_eq!(rec.args.as_str(), "{}");
    }

    #[test]
    fn undecodable_rows_are_corrupt_and_named() {
        let msg = corrupt_message(Invocation { status: "paused".into(), ..raw() });
        assert!(msg.contains("inv-1") && msg.contains("paused"), "{msg}");
        let msg = corrupt_message(Invocation { args: "{nope".into(), ..raw() });
        assert!(msg.contains("args"), "{msg}");
        let msg = corrupt_message(Invocation { result: Some("[1,".into()), ..raw() });
        assert!(msg.contains("result"), "{msg}");
        let msg = corrupt_message(Invocation { error_kind: Some("runtime".into()), ..raw() });
        assert!(msg.contains("error"), "{msg}");
        let msg = corrupt_message(Invocation { attempts: -1, ..raw() });
        assert!(msg.contains("attempts"), "{msg}");
    }

    #[test]
    fn encoded_values_decode_to_the_same_record() {
        let mut rec = InvocationRecord::queued("x".into(), "a".into(), serde_json::json!({"k": [1, 2.5]}), false, 9);
        rec.status = InvocationStatus::Failed;
        rec.error = Some(InvocationError { kind: "runtime".into(), message: "boom".into() });
        rec.duration_ms = Some(u64::MAX);
        let values = Invocation::values(&rec).unwrap();
        let text = |i: usize| match &values[i] {
            ToSqlOutput::Borrowed(ValueRef::Text(s)) => String::from_utf8(s.to_vec()).unwrap(),
            other => panic!("column {i}: {other:?}"),
        };
        assert_eq!(text(3), "failed");
        assert_eq!(text(5), r#"{"k":[1,2.5]}"#);
        assert_eq!(values[13], ToSqlOutput::Owned(Value::Integer(-1)));
    }
}
