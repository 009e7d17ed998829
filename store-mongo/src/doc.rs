//! Records as BSON documents and back.
//!
//! - `u64` values are stored as the `Int64` with the same bits, so that
//!   every value survives (as in the SQLite backend).
//! - Invocation arguments and results are JSON text: BSON has no `u64`, and
//!   `Some(null)` must stay apart from `None` (stored as BSON null).
//! - Integers are read back from `Int32`, `Int64` or an integral `Double`:
//!   servers other than MongoDB (nx-27017) return small numbers as `Int32`,
//!   and booleans also from the integers 1 and 0 (nx-27017 stores booleans
//!   set by `$set` so).
//! - An action's source is BSON binary, its exact bytes (Lua source need not
//!   be UTF-8); documents written when it was a BSON string still read, as
//!   the bytes of that string.

use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, Binary, Bson, Document};
use serde_json::Value;
use sl_store::{
    ActionMeta, ActionRecord, InvocationError, InvocationRecord, InvocationStatus, JsonArgs, Limits, RouteRecord,
};

use crate::error::DecodeError;

/// Field names shared by the store's queries.
pub(crate) mod field {
    pub const ID: &str = "_id";
    pub const NAME: &str = "name";
    pub const VERSION: &str = "version";
    pub const SOURCE: &str = "source";
    pub const BYTECODE: &str = "bytecode";
    pub const ACTION: &str = "action";
    pub const STATUS: &str = "status";
    pub const CREATED: &str = "created";
    pub const STARTED: &str = "started";
    pub const FINISHED: &str = "finished";
    pub const ATTEMPTS: &str = "attempts";
    pub const OWNER: &str = "owner";
    pub const LEASE_UNTIL: &str = "lease_until";
    pub const CALLER: &str = "caller";
    pub const METHOD: &str = "method";
    pub const HOST: &str = "host";
    pub const PATH: &str = "path";
    /// The record's `stored_size` (what the store budget counts).
    pub const SIZE: &str = "size";
    /// Global enqueue order, set once when the record is first written;
    /// in the counter's document, the last number given.
    pub const SEQ: &str = "seq";
    /// In the counter's document, the records' total (see `bytes.rs`).
    pub const BYTES: &str = "bytes";
    /// The idempotency key of a submit, and the fingerprint of what it
    /// asked for (absent without a key).
    pub const IDEM_KEY: &str = "idem_key";
    pub const IDEM_FP: &str = "idem_fp";
    /// BSON Date set when the record is stored in a terminal state; the TTL
    /// index expires records by it.
    pub const EXPIRE_AT: &str = "expire_at";
}

pub(crate) fn u64_to_db(value: u64) -> i64 {
    value as i64
}

pub(crate) fn u64_from_db(value: i64) -> u64 {
    value as u64
}

pub(crate) fn opt_i64(value: Option<i64>) -> Bson {
    value.map_or(Bson::Null, Bson::Int64)
}

pub(crate) fn opt_u64(value: Option<u64>) -> Bson {
    value.map_or(Bson::Null, |v| Bson::Int64(u64_to_db(v)))
}

pub(crate) fn opt_str(value: Option<&str>) -> Bson {
    value.map_or(Bson::Null, |v| Bson::String(v.to_owned()))
}

/// The document of an action (its `_id` is left to the database).
pub(crate) fn action_to_doc(action: &ActionRecord) -> Document {
    doc! {
        field::NAME: &action.name,
        field::VERSION: action.version,
        field::SOURCE: Binary { subtype: BinarySubtype::Generic, bytes: action.source.clone() },
        field::BYTECODE: Binary { subtype: BinarySubtype::Generic, bytes: action.bytecode.clone() },
        "checksum": &action.checksum,
        // For list_actions, which leaves the bytecode out.
        "size": u64_to_db(action.bytecode.len() as u64),
        "limits": {
            "maxmem": u64_to_db(action.limits.maxmem),
            "timeout": u64_to_db(action.limits.timeout),
            "instructions": u64_to_db(action.limits.instructions),
        },
        field::CREATED: action.created,
        "updated": action.updated,
    }
}

pub(crate) fn action_from_doc(doc: &Document) -> Result<ActionRecord, DecodeError> {
    let f = Fields::action(doc);
    Ok(ActionRecord {
        name: f.string(field::NAME)?,
        version: f.i64(field::VERSION)?,
        source: f.source()?,
        bytecode: f.binary(field::BYTECODE)?,
        checksum: f.string("checksum")?,
        limits: f.limits()?,
        created: f.i64(field::CREATED)?,
        updated: f.i64("updated")?,
    })
}

/// Decodes the projection of [`ACTION_META_PROJECTION`].
pub(crate) fn action_meta_from_doc(doc: &Document) -> Result<ActionMeta, DecodeError> {
    let f = Fields::action(doc);
    Ok(ActionMeta {
        name: f.string(field::NAME)?,
        version: f.i64(field::VERSION)?,
        size: u64_from_db(f.i64("size")?),
        limits: f.limits()?,
        created: f.i64(field::CREATED)?,
        updated: f.i64("updated")?,
    })
}

/// What `list_actions` reads: everything but the source and bytecode.
pub(crate) fn action_meta_projection() -> Document {
    doc! { field::SOURCE: 0, field::BYTECODE: 0 }
}

/// Every field of an invocation but `_id`, `seq` and `expire_at`, for
/// `$set`; `size` is its `stored_size`, from the JSON encoded here.
pub(crate) fn invocation_fields(rec: &InvocationRecord) -> (Document, u64) {
    let result = rec.result.as_ref().map(Value::to_string);
    let size = rec.stored_size_with(result.as_ref().map_or(0, String::len));
    let fields = doc! {
        field::ACTION: &rec.action,
        field::VERSION: rec.version,
        field::STATUS: rec.status.as_str(),
        "is_async": rec.is_async,
        "args": rec.args.as_str(),
        "result": result.map_or(Bson::Null, Bson::String),
        "error": rec.error.as_ref().map_or(Bson::Null, |e| Bson::Document(doc! {
            "kind": &e.kind,
            "message": &e.message,
        })),
        "logs": &rec.logs,
        field::CREATED: rec.created,
        field::STARTED: opt_i64(rec.started),
        field::FINISHED: opt_i64(rec.finished),
        "duration_ms": opt_u64(rec.duration_ms),
        "instructions": opt_u64(rec.instructions),
        "peak_memory": opt_u64(rec.peak_memory),
        field::ATTEMPTS: i64::from(rec.attempts),
        field::OWNER: opt_str(rec.owner.as_deref()),
        field::LEASE_UNTIL: opt_i64(rec.lease_until),
        field::CALLER: opt_str(rec.caller.as_deref()),
        field::SIZE: u64_to_db(size),
    };
    (fields, size)
}

pub(crate) fn invocation_from_doc(doc: &Document) -> Result<InvocationRecord, DecodeError> {
    let id = match doc.get(field::ID) {
        Some(Bson::String(id)) => id.clone(),
        Some(other) => {
            return Err(DecodeError::Invalid {
                what: "invocation".into(),
                field: field::ID,
                problem: format!("is not a string: {other}"),
            })
        }
        None => return Err(DecodeError::Missing { what: "invocation".into(), field: field::ID }),
    };
    let f = Fields { doc, what: format!("invocation {id}") };
    let status = f.string(field::STATUS)?;
    let status = InvocationStatus::parse(&status).ok_or_else(|| f.invalid(field::STATUS, format!("is '{status}'")))?;
    let attempts = f.i64(field::ATTEMPTS)?;
    let attempts = u32::try_from(attempts).map_err(|_| f.invalid(field::ATTEMPTS, format!("is {attempts}")))?;
    let error = match f.opt_doc("error")? {
        None => None,
        Some(e) => {
            let e = Fields { doc: e, what: format!("invocation {id}: error") };
            Some(InvocationError { kind: e.string("kind")?, message: e.string("message")? })
        }
    };
    Ok(InvocationRecord {
        action: f.string(field::ACTION)?,
        version: f.i64(field::VERSION)?,
        status,
        is_async: f.bool("is_async")?,
        args: f.json_args("args")?,
        result: f.opt_string("result")?.map(|text| f.parse_json("result", &text)).transpose()?,
        error,
        logs: f.string("logs")?,
        created: f.i64(field::CREATED)?,
        started: f.opt_i64(field::STARTED)?,
        finished: f.opt_i64(field::FINISHED)?,
        duration_ms: f.opt_i64("duration_ms")?.map(u64_from_db),
        instructions: f.opt_i64("instructions")?.map(u64_from_db),
        peak_memory: f.opt_i64("peak_memory")?.map(u64_from_db),
        attempts,
        owner: f.opt_string(field::OWNER)?,
        lease_until: f.opt_i64(field::LEASE_UNTIL)?,
        // Missing in records written before callers were recorded.
        caller: f.opt_string(field::CALLER)?,
        id,
    })
}

/// The filter that matches the route with this exact key.
pub(crate) fn route_key(method: &str, host: &str, path: &str) -> Document {
    doc! { field::METHOD: method, field::HOST: host, field::PATH: path }
}

/// The document of a route (its `_id` is left to the database).
pub(crate) fn route_to_doc(route: &RouteRecord) -> Document {
    let mut doc = route_key(&route.method, &route.host, &route.path);
    doc.insert(field::ACTION, &route.action);
    doc.insert(field::CREATED, route.created);
    doc
}

pub(crate) fn route_from_doc(doc: &Document) -> Result<RouteRecord, DecodeError> {
    let f = Fields { doc, what: "route".to_owned() };
    let (method, host, path) = (f.string(field::METHOD)?, f.string(field::HOST)?, f.string(field::PATH)?);
    let f = Fields { doc, what: format!("route {}", RouteRecord::label_of(&method, &host, &path)) };
    Ok(RouteRecord { action: f.string(field::ACTION)?, created: f.i64(field::CREATED)?, method, host, path })
}

/// The integer `field` of a document that is not a record (a counter).
pub(crate) fn integer(doc: &Document, what: &str, field: &'static str) -> Result<i64, DecodeError> {
    Fields { doc, what: what.to_owned() }.i64(field)
}

/// An integer as any server stores it: `Int32`, `Int64` or an integral
/// `Double`.
fn as_i64(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int64(v) => Some(*v),
        Bson::Int32(v) => Some(i64::from(*v)),
        // Integral and -2^63 <= v < 2^63 (`i64::MAX as f64` is 2^63): the cast is exact.
        Bson::Double(v) if v.fract() == 0.0 && *v >= i64::MIN as f64 && *v < i64::MAX as f64 => Some(*v as i64),
        _ => None,
    }
}

/// Typed access to the fields of one stored document; errors name it.
pub(crate) struct Fields<'a> {
    doc: &'a Document,
    what: String,
}

impl<'a> Fields<'a> {
    /// The fields of `doc`, which errors call `what`.
    pub(crate) fn new(doc: &'a Document, what: impl Into<String>) -> Self {
        Fields { doc, what: what.into() }
    }

    fn action(doc: &'a Document) -> Self {
        let what = match doc.get(field::NAME) {
            Some(Bson::String(name)) => format!("action {name}"),
            _ => "action".to_owned(),
        };
        Fields { doc, what }
    }

    fn missing(&self, field: &'static str) -> DecodeError {
        DecodeError::Missing { what: self.what.clone(), field }
    }

    pub(crate) fn invalid(&self, field: &'static str, problem: String) -> DecodeError {
        DecodeError::Invalid { what: self.what.clone(), field, problem }
    }

    fn wrong_type(&self, field: &'static str, expected: &str, found: &Bson) -> DecodeError {
        self.invalid(field, format!("is not {expected}: {:?}", found.element_type()))
    }

    /// The value, with BSON null as absent.
    fn get(&self, field: &'static str) -> Option<&'a Bson> {
        self.doc.get(field).filter(|value| !matches!(value, Bson::Null))
    }

    fn required(&self, field: &'static str) -> Result<&'a Bson, DecodeError> {
        self.get(field).ok_or_else(|| self.missing(field))
    }

    pub(crate) fn string(&self, field: &'static str) -> Result<String, DecodeError> {
        self.opt_string(field)?.ok_or_else(|| self.missing(field))
    }

    pub(crate) fn opt_string(&self, field: &'static str) -> Result<Option<String>, DecodeError> {
        match self.get(field) {
            None => Ok(None),
            Some(Bson::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.wrong_type(field, "a string", other)),
        }
    }

    pub(crate) fn i64(&self, field: &'static str) -> Result<i64, DecodeError> {
        self.opt_i64(field)?.ok_or_else(|| self.missing(field))
    }

    pub(crate) fn opt_i64(&self, field: &'static str) -> Result<Option<i64>, DecodeError> {
        match self.get(field) {
            None => Ok(None),
            Some(value) => as_i64(value).map(Some).ok_or_else(|| self.wrong_type(field, "an integer", value)),
        }
    }

    /// An array of integers (absent: empty).
    pub(crate) fn i64s(&self, field: &'static str) -> Result<Vec<i64>, DecodeError> {
        self.array(field)?.iter().map(|v| as_i64(v).ok_or_else(|| self.wrong_type(field, "integers", v))).collect()
    }

    /// An array of strings (absent: empty).
    pub(crate) fn strings(&self, field: &'static str) -> Result<Vec<String>, DecodeError> {
        let strings = self.array(field)?.iter().map(|v| match v {
            Bson::String(s) => Ok(s.clone()),
            other => Err(self.wrong_type(field, "strings", other)),
        });
        strings.collect()
    }

    fn array(&self, field: &'static str) -> Result<&'a [Bson], DecodeError> {
        match self.get(field) {
            None => Ok(&[]),
            Some(Bson::Array(values)) => Ok(values),
            Some(other) => Err(self.wrong_type(field, "an array", other)),
        }
    }

    pub(crate) fn bool(&self, field: &'static str) -> Result<bool, DecodeError> {
        match self.required(field)? {
            Bson::Boolean(b) => Ok(*b),
            // nx-27017 0.8.1 turns booleans written by `$set` into 1 and 0.
            Bson::Int32(1) | Bson::Int64(1) => Ok(true),
            Bson::Int32(0) | Bson::Int64(0) => Ok(false),
            other => Err(self.wrong_type(field, "a boolean", other)),
        }
    }

    fn binary(&self, field: &'static str) -> Result<Vec<u8>, DecodeError> {
        match self.required(field)? {
            Bson::Binary(b) => Ok(b.bytes.clone()),
            other => Err(self.wrong_type(field, "binary data", other)),
        }
    }

    /// The source: binary, or the string older versions wrote.
    fn source(&self) -> Result<Vec<u8>, DecodeError> {
        match self.required(field::SOURCE)? {
            Bson::Binary(b) => Ok(b.bytes.clone()),
            Bson::String(s) => Ok(s.clone().into_bytes()),
            other => Err(self.wrong_type(field::SOURCE, "binary data or a string", other)),
        }
    }

    fn opt_doc(&self, field: &'static str) -> Result<Option<&'a Document>, DecodeError> {
        match self.get(field) {
            None => Ok(None),
            Some(Bson::Document(d)) => Ok(Some(d)),
            Some(other) => Err(self.wrong_type(field, "a document", other)),
        }
    }

    /// Arguments kept as JSON text, checked to be JSON.
    fn json_args(&self, field: &'static str) -> Result<JsonArgs, DecodeError> {
        JsonArgs::parse(self.string(field)?).map_err(|err| self.invalid(field, format!("is not JSON ({err})")))
    }

    fn parse_json(&self, field: &'static str, text: &str) -> Result<Value, DecodeError> {
        serde_json::from_str(text).map_err(|err| self.invalid(field, format!("is not JSON ({err})")))
    }

    fn limits(&self) -> Result<Limits, DecodeError> {
        let doc = match self.required("limits")? {
            Bson::Document(d) => d,
            other => return Err(self.wrong_type("limits", "a document", other)),
        };
        let f = Fields { doc, what: format!("{}: limits", self.what) };
        Ok(Limits {
            maxmem: u64_from_db(f.i64("maxmem")?),
            timeout: u64_from_db(f.i64("timeout")?),
            instructions: u64_from_db(f.i64("instructions")?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn action() -> ActionRecord {
        ActionRecord {
            name: "a".into(),
            version: 3,
            source: "return 1".into(),
            bytecode: vec![0, 1, 255],
            checksum: "ab".into(),
            limits: Limits { maxmem: u64::MAX, timeout: 0, instructions: 1 << 40 },
            created: 1,
            updated: 2,
        }
    }

    fn invocation() -> InvocationRecord {
        let mut rec = InvocationRecord::queued("id-1".into(), "a".into(), json!({"n": u64::MAX}), true, 5);
        rec.result = Some(Value::Null);
        rec.duration_ms = Some(u64::MAX);
        rec.attempts = u32::MAX;
        rec.error = Some(InvocationError { kind: "runtime".into(), message: "boom".into() });
        rec.caller = Some("parent-1".into());
        rec
    }

    fn stored(rec: &InvocationRecord) -> Document {
        let (mut doc, _) = invocation_fields(rec);
        doc.insert(field::ID, &rec.id);
        doc
    }

    #[test]
    fn actions_round_trip_with_every_u64() {
        let a = action();
        let doc = action_to_doc(&a);
        assert_eq!(action_from_doc(&doc).unwrap(), a);
        assert_eq!(action_meta_from_doc(&doc).unwrap(), a.meta());
    }

    #[test]
    fn sources_are_binary_and_old_string_sources_read() {
        let a = ActionRecord { source: b"return '\xff\xfe'".to_vec(), ..action() };
        let mut doc = action_to_doc(&a);
        assert!(matches!(doc.get(field::SOURCE), Some(Bson::Binary(b)) if b.bytes == a.source));
        assert_eq!(action_from_doc(&doc).unwrap(), a);
        // As versions that stored the source as a string wrote it.
        doc.insert(field::SOURCE, "return \"é\"");
        assert_eq!(action_from_doc(&doc).unwrap().source, "return \"é\"".as_bytes());
        doc.insert(field::SOURCE, 5);
        let err = action_from_doc(&doc).unwrap_err().to_string();
        assert!(err.starts_with("action a: field `source` is not binary data or a string"), "{err}");
        doc.remove(field::SOURCE);
        assert_eq!(action_from_doc(&doc).unwrap_err().to_string(), "action a: field `source` is missing");
    }

    #[test]
    fn invocations_round_trip_and_some_null_is_not_none() {
        let rec = invocation();
        assert_eq!(invocation_from_doc(&stored(&rec)).unwrap(), rec);
        let none = InvocationRecord { result: None, ..rec };
        let doc = stored(&none);
        assert_eq!(doc.get("result"), Some(&Bson::Null));
        assert_eq!(invocation_from_doc(&doc).unwrap(), none);
    }

    #[test]
    fn a_missing_or_null_caller_reads_as_none() {
        let rec = invocation();
        let mut doc = stored(&rec);
        assert_eq!(doc.get(field::CALLER), Some(&Bson::String("parent-1".into())));
        doc.remove(field::CALLER);
        let expected = InvocationRecord { caller: None, ..rec };
        assert_eq!(invocation_from_doc(&doc).unwrap(), expected, "a record written before callers");
        assert_eq!(stored(&expected).get(field::CALLER), Some(&Bson::Null));
        assert_eq!(invocation_from_doc(&stored(&expected)).unwrap(), expected);
        doc.insert(field::CALLER, 5);
        assert!(invocation_from_doc(&doc).unwrap_err().to_string().contains("`caller` is not a string"));
    }

    #[test]
    fn routes_round_trip_and_bad_ones_are_named() {
        let route = RouteRecord {
            method: "*".into(),
            host: String::new(),
            path: "/a/:b".into(),
            action: "x".into(),
            created: 3,
        };
        let mut doc = route_to_doc(&route);
        assert_eq!(route_from_doc(&doc).unwrap(), route);
        assert_eq!(route_key("*", "", "/a/:b"), doc! { "method": "*", "host": "", "path": "/a/:b" });
        doc.remove(field::ACTION);
        assert_eq!(route_from_doc(&doc).unwrap_err().to_string(), "route * /a/:b: field `action` is missing");
        doc.remove(field::HOST);
        assert_eq!(route_from_doc(&doc).unwrap_err().to_string(), "route: field `host` is missing");
    }

    #[test]
    fn small_integers_may_come_back_as_int32_or_double() {
        let rec = InvocationRecord { started: Some(7), ..invocation() };
        let mut doc = stored(&rec);
        doc.insert(field::VERSION, Bson::Int32(0));
        doc.insert(field::STARTED, Bson::Double(7.0));
        doc.insert(field::ATTEMPTS, Bson::Int32(-1)); // u32::MAX as stored by another build
        let err = invocation_from_doc(&doc).unwrap_err().to_string();
        assert_eq!(err, "invocation id-1: field `attempts` is -1");
        doc.insert(field::ATTEMPTS, Bson::Int32(4));
        let got = invocation_from_doc(&doc).unwrap();
        assert_eq!((got.version, got.started, got.attempts), (0, Some(7), 4));
        doc.insert(field::STARTED, Bson::Double(7.5));
        assert!(invocation_from_doc(&doc).unwrap_err().to_string().contains("`started` is not an integer"));
    }

    #[test]
    fn bad_documents_name_the_record_and_field() {
        let mut doc = stored(&invocation());
        doc.insert(field::STATUS, "done");
        assert_eq!(invocation_from_doc(&doc).unwrap_err().to_string(), "invocation id-1: field `status` is 'done'");
        doc.insert(field::STATUS, "queued");
        doc.insert("args", "{not json");
        assert!(invocation_from_doc(&doc)
            .unwrap_err()
            .to_string()
            .starts_with("invocation id-1: field `args` is not JSON"));
        doc.remove("args");
        assert_eq!(invocation_from_doc(&doc).unwrap_err().to_string(), "invocation id-1: field `args` is missing");
        doc.insert(field::ID, 5);
        assert!(invocation_from_doc(&doc)
            .unwrap_err()
            .to_string()
            .starts_with("invocation: field `_id` is not a string"));
        let mut a = action_to_doc(&action());
        a.insert(field::BYTECODE, "text");
        assert!(action_from_doc(&a).unwrap_err().to_string().starts_with("action a: field `bytecode` is not binary"));
        a.remove("limits");
        assert_eq!(action_meta_from_doc(&a).unwrap_err().to_string(), "action a: field `limits` is missing");
    }
}
