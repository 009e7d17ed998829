//! The records' total: the bytes every stored invocation record counts
//! for (its `size`, the record's `stored_size`), kept in the `bytes` field
//! of the enqueue counter's document so that
//! [`Store::invocation_bytes`](sl_store::Store::invocation_bytes) reads one
//! document, not every record.
//!
//! MongoDB is used without transactions, so the total is kept beside the
//! writes, not inside them:
//!
//! - a write of new records adds their sizes in the same `$inc` that
//!   reserves their enqueue numbers (no extra round trip), and takes back
//!   the sizes of those it then did not store;
//! - a put of records that may exist reads their stored sizes first (one
//!   `find` by `_id` for the batch) and adds the difference;
//! - a delete finds what it deletes with their sizes (the
//!   `{status, finished, size}` index, a batch at a time) and takes off
//!   what it deleted.
//!
//! A server killed between a write and its `$inc`, a write that fails
//! after its `$inc`, two servers putting one record at once, or MongoDB's
//! TTL index (a safety net a day after
//! the retention, for a database no server purges) can leave the total off
//! by what they touched. So each server counts it again from the records
//! when it connects ([`MongoStore::recount_bytes`]), which is the one
//! place the cost grows with the records stored; writes made by other
//! servers during that count may be missed or counted twice once, and are
//! not carried further.

use std::collections::HashMap;

use mongodb::bson::{doc, Bson, Document};
use sl_store::{InvocationStatus, Purged, Result, StoreError};

use crate::doc::{self, field};
use crate::error::{is_duplicate_key, map};
use crate::{MongoStore, SEQ_COUNTER};

/// Most records one batch of a delete finds and deletes.
pub(crate) const DELETE_BATCH: usize = 1_000;

/// The filter of terminal records.
pub(crate) fn terminal() -> Document {
    let terminal = [InvocationStatus::Succeeded, InvocationStatus::Failed].map(|s| Bson::from(s.as_str()));
    doc! { field::STATUS: { "$in": terminal.to_vec() } }
}

/// A record's `size` field (absent or null, in records written before it
/// was kept: 0).
fn size_of(found: &Document) -> Result<i64> {
    match found.get(field::SIZE) {
        None | Some(Bson::Null) => Ok(0),
        Some(_) => Ok(doc::integer(found, "invocation", field::SIZE)?.max(0)),
    }
}

impl MongoStore {
    /// Adds `delta` (may be negative) to the records' total.
    pub(crate) fn add_bytes(&self, delta: i64) -> Result<()> {
        if delta == 0 {
            return Ok(());
        }
        self.update_total(doc! { "$inc": { field::BYTES: delta } })
    }

    /// Applies `update` to the counter's document, created if missing.
    fn update_total(&self, update: Document) -> Result<()> {
        let apply = || self.counters.update_one(doc! { field::ID: SEQ_COUNTER }, update.clone()).upsert(true).run();
        // Two first updates at once may both insert; one fails and is
        // retried as an update.
        match apply() {
            Err(err) if is_duplicate_key(&err) => apply(),
            other => other,
        }
        .map_err(|err| self.err("cannot count the records' bytes", err))?;
        Ok(())
    }

    /// The stored sizes of those of `ids` that are stored (one `find`).
    pub(crate) fn stored_sizes(&self, ids: &[&str]) -> Result<HashMap<String, i64>> {
        let cursor = self
            .invocations
            .find(doc! { field::ID: { "$in": ids } })
            .projection(doc! { field::ID: 1, field::SIZE: 1 })
            .run()
            .map_err(map)?;
        let mut sizes = HashMap::with_capacity(ids.len());
        for found in cursor {
            let found = found.map_err(map)?;
            let id =
                found.get_str(field::ID).map_err(|_| StoreError::Corrupt("an invocation id is not text".into()))?;
            sizes.insert(id.to_owned(), size_of(&found)?);
        }
        Ok(sizes)
    }

    /// The records' total as kept (`None`: never counted in this
    /// database).
    pub(crate) fn read_bytes(&self) -> Result<Option<u64>> {
        let found = self.counters.find_one(doc! { field::ID: SEQ_COUNTER }).run().map_err(map)?;
        match found {
            Some(found) if found.contains_key(field::BYTES) => {
                Ok(Some(doc::integer(&found, "the records' total", field::BYTES)?.max(0) as u64))
            }
            _ => Ok(None),
        }
    }

    /// Counts the records' total again from every record (one `$group`)
    /// and keeps it; returns it.
    pub(crate) fn recount_bytes(&self) -> Result<u64> {
        let pipeline = [doc! { "$group": { "_id": Bson::Null, "total": { "$sum": format!("${}", field::SIZE) } } }];
        let mut cursor = self.invocations.aggregate(pipeline).run().map_err(map)?;
        let total = match cursor.next().transpose().map_err(map)? {
            None => 0,
            Some(found) => match found.get("total") {
                Some(Bson::Int64(n)) => *n,
                Some(Bson::Int32(n)) => i64::from(*n),
                Some(Bson::Double(n)) => *n as i64,
                other => return Err(StoreError::Corrupt(format!("the sum of invocation sizes is {other:?}"))),
            },
        }
        .max(0);
        self.update_total(doc! { "$set": { field::BYTES: total } })?;
        Ok(total as u64)
    }

    /// Finds, in order of `finished`, at most `limit` terminal records
    /// that match `filter` as well, no further than `bytes` of them;
    /// returns their ids and the bytes they count for.
    pub(crate) fn find_terminal(&self, filter: Document, bytes: u64, limit: usize) -> Result<(Vec<Bson>, u64)> {
        let mut query = terminal();
        query.extend(filter);
        let mut cursor = self
            .invocations
            .find(query)
            .sort(doc! { field::FINISHED: 1 })
            .projection(doc! { field::ID: 1, field::SIZE: 1 })
            .batch_size(u32::try_from(limit.min(DELETE_BATCH)).unwrap_or(1000))
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .run()
            .map_err(map)?;
        let (mut ids, mut found_bytes) = (Vec::new(), 0u64);
        while found_bytes < bytes && ids.len() < limit {
            let Some(found) = cursor.next().transpose().map_err(map)? else { break };
            let size = size_of(&found)? as u64;
            match found.get(field::ID) {
                Some(id) => ids.push(id.clone()),
                None => return Err(StoreError::Corrupt("an invocation without an _id".into())),
            }
            found_bytes += size;
        }
        Ok((ids, found_bytes))
    }

    /// Deletes those of `ids` (found by [`find_terminal`](Self::find_terminal),
    /// `bytes` together) that are still terminal, with one `deleteMany`,
    /// and takes them off the total. Another server deleting at once may
    /// have deleted some of them first: then the bytes are those of the
    /// share this call deleted, in proportion.
    pub(crate) fn delete_terminal(&self, ids: Vec<Bson>, bytes: u64) -> Result<Purged> {
        if ids.is_empty() {
            return Ok(Purged::default());
        }
        let n = ids.len();
        let mut filter = terminal();
        filter.insert(field::ID, doc! { "$in": ids });
        let deleted = self.invocations.delete_many(filter).run().map_err(map)?.deleted_count;
        let bytes =
            if deleted as usize == n { bytes } else { (u128::from(bytes) * u128::from(deleted) / n as u128) as u64 };
        self.add_bytes(-(bytes.min(i64::MAX as u64) as i64))?;
        Ok(Purged { records: deleted, bytes })
    }
}
