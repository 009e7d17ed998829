//! [`Schedules`] on MongoDB: one document per schedule in [`SCHEDULES`],
//! shared by every server on the database, written with single-document
//! atomic operations only.
//!
//! # Documents
//!
//! `_id` is the schedule's name (so names are unique by the `_id` index,
//! and `list_schedules` walks that index in name order: MongoDB compares
//! strings byte by byte), beside the settings (`action`, `spec`,
//! `time_zone`, `args` as the JSON text given, `overlap`, `catch_up`,
//! `jitter_ms` as the `Int64` with the bits of the `u64`, `created`) and
//! the progress: `last_fired`, `last_invocation` (null before the first
//! firing made) and `fired` (the bits of a `u64`).
//!
//! `last_fired` is an `Int64` once the schedule has fired, and before
//! that the string [`NEVER`]. A sentinel rather than null or a missing
//! field, because the compare-and-set matches the value read by equality
//! and nx-27017 gets the ways of matching "null or missing" wrong in
//! writes (`$ne` never matches null there, and a top-level `$or` beside
//! other conditions misbehaves); a string rather than an integer such as
//! `i64::MIN`, because MongoDB never finds a string equal to a number: every
//! `i64` stays a time a schedule can have fired at. The sentinel is turned
//! into `None` (and back) where documents are read and filters written,
//! and nowhere else.
//!
//! # The compare-and-set
//!
//! [`advance_schedule`](Schedules::advance_schedule) is one `update` of
//! one document whose filter is `{_id: name, last_fired: <from>}`
//! (`from` as an `Int64`, or [`NEVER`]): MongoDB applies an update to a
//! document atomically, re-checking the filter against the document it
//! changes, so of two servers moving a schedule from the same value, the
//! second finds it moved and matches nothing. The update `$set`s
//! `last_fired`, and with an invocation also `last_invocation` and `$inc`s
//! `fired`, in the same write. The answer is whether a document matched.
//!
//! Every other call is one command too: an `insert` (a duplicate `_id` is
//! `AlreadyExists`), a `find` or a `delete`.

use mongodb::bson::{doc, Bson, Document};
use sl_store::{Result, ScheduleInfo, ScheduleRecord, Schedules, StoreError};

use crate::doc::{u64_from_db, u64_to_db, Fields};
use crate::error::{is_duplicate_key, map};
use crate::MongoStore;

/// Collection of schedules.
pub const SCHEDULES: &str = "schedules";

/// The `last_fired` of a schedule that never fired (see the module docs).
pub(crate) const NEVER: &str = "never";

/// Field names of [`SCHEDULES`].
mod field {
    pub const ID: &str = "_id";
    pub const ACTION: &str = "action";
    pub const SPEC: &str = "spec";
    pub const TIME_ZONE: &str = "time_zone";
    pub const ARGS: &str = "args";
    pub const OVERLAP: &str = "overlap";
    pub const CATCH_UP: &str = "catch_up";
    pub const JITTER_MS: &str = "jitter_ms";
    pub const CREATED: &str = "created";
    pub const LAST_FIRED: &str = "last_fired";
    pub const LAST_INVOCATION: &str = "last_invocation";
    pub const FIRED: &str = "fired";
}

/// `last_fired` as stored: the time, or [`NEVER`].
fn last_fired_to_db(last_fired: Option<i64>) -> Bson {
    last_fired.map_or_else(|| Bson::String(NEVER.to_owned()), Bson::Int64)
}

/// The document of a schedule that never fired.
fn schedule_to_doc(s: &ScheduleRecord) -> Document {
    doc! {
        field::ID: &s.name,
        field::ACTION: &s.action,
        field::SPEC: &s.spec,
        field::TIME_ZONE: &s.time_zone,
        field::ARGS: &s.args,
        field::OVERLAP: &s.overlap,
        field::CATCH_UP: &s.catch_up,
        field::JITTER_MS: u64_to_db(s.jitter_ms),
        field::CREATED: s.created,
        field::LAST_FIRED: last_fired_to_db(None),
        field::LAST_INVOCATION: Bson::Null,
        field::FIRED: 0_i64,
    }
}

fn schedule_from_doc(doc: &Document) -> Result<ScheduleInfo> {
    let name = Fields::new(doc, "schedule").string(field::ID)?;
    let f = Fields::new(doc, format!("schedule {name}"));
    let last_fired = match doc.get(field::LAST_FIRED) {
        Some(Bson::String(never)) if never == NEVER => None,
        _ => Some(f.i64(field::LAST_FIRED)?),
    };
    Ok(ScheduleInfo {
        schedule: ScheduleRecord {
            action: f.string(field::ACTION)?,
            spec: f.string(field::SPEC)?,
            time_zone: f.string(field::TIME_ZONE)?,
            args: f.string(field::ARGS)?,
            overlap: f.string(field::OVERLAP)?,
            catch_up: f.string(field::CATCH_UP)?,
            jitter_ms: u64_from_db(f.i64(field::JITTER_MS)?),
            created: f.i64(field::CREATED)?,
            name,
        },
        last_fired,
        last_invocation: f.opt_string(field::LAST_INVOCATION)?,
        fired: u64_from_db(f.i64(field::FIRED)?),
    })
}

impl Schedules for MongoStore {
    fn create_schedule(&self, schedule: &ScheduleRecord) -> Result<()> {
        match self.schedules.insert_one(schedule_to_doc(schedule)).run() {
            Ok(_) => Ok(()),
            Err(err) if is_duplicate_key(&err) => Err(StoreError::AlreadyExists(schedule.name.clone())),
            Err(err) => Err(map(err)),
        }
    }

    fn get_schedule(&self, name: &str) -> Result<Option<ScheduleInfo>> {
        let found = self.schedules.find_one(doc! { field::ID: name }).run().map_err(map)?;
        found.as_ref().map(schedule_from_doc).transpose()
    }

    fn list_schedules(&self) -> Result<Vec<ScheduleInfo>> {
        let cursor = self.schedules.find(doc! {}).sort(doc! { field::ID: 1 }).run().map_err(map)?;
        let mut schedules = Vec::new();
        for doc in cursor {
            schedules.push(schedule_from_doc(&doc.map_err(map)?)?);
        }
        Ok(schedules)
    }

    fn delete_schedule(&self, name: &str) -> Result<bool> {
        let deleted = self.schedules.delete_one(doc! { field::ID: name }).run().map_err(map)?;
        Ok(deleted.deleted_count > 0)
    }

    fn advance_schedule(&self, name: &str, from: Option<i64>, to: i64, invocation: Option<&str>) -> Result<bool> {
        let filter = doc! { field::ID: name, field::LAST_FIRED: last_fired_to_db(from) };
        let update = match invocation {
            Some(invocation) => doc! {
                "$set": { field::LAST_FIRED: to, field::LAST_INVOCATION: invocation },
                "$inc": { field::FIRED: 1_i64 },
            },
            None => doc! { "$set": { field::LAST_FIRED: to } },
        };
        let updated = self.schedules.update_one(filter, update).run().map_err(map)?;
        Ok(updated.matched_count > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ScheduleRecord {
        ScheduleRecord {
            name: "s".into(),
            action: "a".into(),
            spec: "@every 30s".into(),
            time_zone: "UTC".into(),
            args: "{\"é\": 1}".into(),
            overlap: "allow".into(),
            catch_up: "all:3".into(),
            jitter_ms: u64::MAX,
            created: -5,
        }
    }

    #[test]
    fn a_new_document_decodes_as_never_fired() {
        let info = schedule_from_doc(&schedule_to_doc(&record())).unwrap();
        assert_eq!(info, ScheduleInfo { schedule: record(), last_fired: None, last_invocation: None, fired: 0 });
    }

    #[test]
    fn last_fired_is_a_time_or_the_sentinel() {
        let mut d = schedule_to_doc(&record());
        assert_eq!(d.get(field::LAST_FIRED), Some(&Bson::String(NEVER.into())));
        for value in [i64::MIN, -1, 0, i64::MAX] {
            d.insert(field::LAST_FIRED, value);
            assert_eq!(schedule_from_doc(&d).unwrap().last_fired, Some(value));
        }
        // Servers that store small numbers as Int32.
        d.insert(field::LAST_FIRED, 7_i32);
        d.insert(field::FIRED, 2_i32);
        let info = schedule_from_doc(&d).unwrap();
        assert_eq!((info.last_fired, info.fired), (Some(7), 2));
    }

    #[test]
    fn an_undecodable_document_is_corrupt_and_named() {
        for bad in [Bson::Null, Bson::String("later".into()), Bson::Boolean(true)] {
            let mut d = schedule_to_doc(&record());
            d.insert(field::LAST_FIRED, bad.clone());
            match schedule_from_doc(&d) {
                Err(StoreError::Corrupt(msg)) => {
                    assert!(msg.contains("schedule s") && msg.contains(field::LAST_FIRED), "{msg}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let mut d = schedule_to_doc(&record());
        d.remove(field::SPEC);
        assert!(matches!(schedule_from_doc(&d), Err(StoreError::Corrupt(msg)) if msg.contains("spec")));
    }
}
