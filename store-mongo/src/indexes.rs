//! The collections' indexes, created (if missing) on connect.

use std::time::Duration;

use mongodb::bson::{doc, Document};
use mongodb::error::{ErrorKind, Result};
use mongodb::options::IndexOptions;
use mongodb::sync::{Collection, Database};
use mongodb::IndexModel;

use crate::doc::field;
use crate::events::field as ev;

/// `createIndexes` codes for an index whose key exists with other options.
const INDEX_OPTIONS_CONFLICT: i32 = 85;
const INDEX_KEY_SPECS_CONFLICT: i32 = 86;

/// The largest `expireAfterSeconds` MongoDB accepts (about 68 years).
const MAX_EXPIRE_SECS: u64 = i32::MAX as u64;

/// The key patterns of the store's indexes besides `_id` (which is the
/// invocation id).
pub(crate) const ACTION_KEYS: &[&[(&str, i32)]] = &[&[(field::NAME, 1)]];

/// See [`ACTION_KEYS`]. Unique: a route's key is its (method, host, path).
pub(crate) const ROUTE_KEYS: &[&[(&str, i32)]] = &[&[(field::METHOD, 1), (field::HOST, 1), (field::PATH, 1)]];

/// See [`ACTION_KEYS`]. The TTL index on `expire_at` is created only with a
/// retention.
pub(crate) const INVOCATION_KEYS: &[&[(&str, i32)]] = &[
    // The queue: runnable records in enqueue order.
    &[(field::STATUS, 1), (field::SEQ, 1)],
    // list_invocations of one action, newest first.
    &[(field::ACTION, 1), (field::SEQ, 1)],
    // list_invocations of all actions, newest first.
    &[(field::SEQ, 1)],
    // The store budget: terminal records oldest first, with their sizes.
    &[(field::STATUS, 1), (field::FINISHED, 1), (field::SIZE, 1)],
];

/// The key patterns of the events collections' indexes (see `events.rs`),
/// besides the unique ones of [`MESSAGE_UNIQUE_KEYS`].
pub(crate) const EVENT_KEYS: &[(&str, &[(&str, i32)])] = &[
    // Retention (oldest first across partitions) and Position::Time.
    (crate::MESSAGES, &[(ev::TUID, 1), (ev::PUBLISHED, 1), (ev::PARTITION, 1), (ev::OFFSET, 1)]),
    // The subscriptions a topic's deletion takes along.
    (crate::SUBSCRIPTIONS, &[(ev::TOPIC, 1)]),
    // A partition's pending list in offset order; a subscription's entries.
    (crate::PENDING, &[(ev::UID, 1), (ev::PARTITION, 1), (ev::GEN, 1), (ev::OFFSET, 1)]),
    // A subscription's dead letters, oldest death first.
    (crate::DEAD_LETTERS, &[(ev::UID, 1), (ev::DIED, 1), (ev::PARTITION, 1), (ev::OFFSET, 1)]),
];

/// Unique: one message (or tombstone) an offset, which is how a late
/// publisher and a reader that gave up on its offset agree.
pub(crate) const MESSAGE_UNIQUE_KEYS: &[&[(&str, i32)]] = &[&[(ev::TUID, 1), (ev::PARTITION, 1), (ev::OFFSET, 1)]];

fn keys(pattern: &[(&str, i32)]) -> Document {
    let mut keys = Document::new();
    for (name, order) in pattern {
        keys.insert(*name, *order);
    }
    keys
}

/// Creates the indexes. `retention_secs` is the TTL of terminal invocation
/// records (0: kept until purged); an existing TTL index is changed to it.
pub(crate) fn ensure(db: &Database, retention_secs: u64) -> Result<()> {
    ensure_unique(&db.collection(crate::ACTIONS), ACTION_KEYS)?;
    ensure_unique(&db.collection(crate::ROUTES), ROUTE_KEYS)?;
    let invocations: Collection<Document> = db.collection(crate::INVOCATIONS);
    invocations.create_indexes(INVOCATION_KEYS.iter().map(|p| IndexModel::builder().keys(keys(p)).build())).run()?;
    drop_indexes(&invocations, OBSOLETE_INVOCATION_KEYS)?;
    // Idempotency keys: unique among the records that have one.
    let idem = IndexOptions::builder()
        .unique(true)
        .partial_filter_expression(doc! { field::IDEM_KEY: { "$exists": true } })
        .build();
    invocations.create_index(IndexModel::builder().keys(doc! { field::IDEM_KEY: 1 }).options(idem).build()).run()?;
    if retention_secs > 0 {
        ensure_ttl(db, &invocations, retention_secs)?;
    }
    ensure_events(db)
}

/// Creates the indexes of the events collections.
fn ensure_events(db: &Database) -> Result<()> {
    for (collection, pattern) in EVENT_KEYS {
        db.collection::<Document>(collection).create_index(IndexModel::builder().keys(keys(pattern)).build()).run()?;
    }
    let messages: Collection<Document> = db.collection(crate::MESSAGES);
    ensure_unique(&messages, MESSAGE_UNIQUE_KEYS)?;
    // Idempotency keys: unique in a topic among the messages that have one.
    let idem = IndexOptions::builder()
        .unique(true)
        .partial_filter_expression(doc! { ev::IDEM_KEY: { "$exists": true } })
        .build();
    let pattern = doc! { ev::TUID: 1, ev::IDEM_KEY: 1 };
    messages.create_index(IndexModel::builder().keys(pattern).options(idem).build()).run()?;
    Ok(())
}

/// Key patterns of indexes earlier versions created that nothing reads now
/// (records were listed by `created`): each is one more write for every
/// record.
const OBSOLETE_INVOCATION_KEYS: &[&[(&str, i32)]] =
    &[&[(field::ACTION, 1), (field::CREATED, 1), (field::SEQ, 1)], &[(field::CREATED, 1), (field::SEQ, 1)]];

/// Drops the indexes of `collection` whose key pattern is one of
/// `patterns`, found by their keys (whatever they were named).
fn drop_indexes(collection: &Collection<Document>, patterns: &[&[(&str, i32)]]) -> Result<()> {
    let doomed: Vec<Document> = patterns.iter().map(|p| keys(p)).collect();
    let mut names = Vec::new();
    for index in collection.list_indexes().run()? {
        let index = index?;
        if doomed.contains(&index.keys) {
            names.extend(index.options.and_then(|o| o.name));
        }
    }
    for name in names {
        collection.drop_index(name).run()?;
    }
    Ok(())
}

/// Creates a unique index on `collection` for each of `patterns`.
fn ensure_unique(collection: &Collection<Document>, patterns: &[&[(&str, i32)]]) -> Result<()> {
    let unique = IndexOptions::builder().unique(true).build();
    for pattern in patterns {
        collection.create_index(IndexModel::builder().keys(keys(pattern)).options(unique.clone()).build()).run()?;
    }
    Ok(())
}

fn ensure_ttl(db: &Database, invocations: &Collection<Document>, retention_secs: u64) -> Result<()> {
    let secs = retention_secs.min(MAX_EXPIRE_SECS);
    let ttl = IndexModel::builder()
        .keys(doc! { field::EXPIRE_AT: 1 })
        .options(IndexOptions::builder().expire_after(Duration::from_secs(secs)).build())
        .build();
    let err = match invocations.create_index(ttl).run() {
        Ok(_) => return Ok(()),
        Err(err) => err,
    };
    let conflict = matches!(&*err.kind, ErrorKind::Command(e)
        if e.code == INDEX_OPTIONS_CONFLICT || e.code == INDEX_KEY_SPECS_CONFLICT);
    if !conflict {
        return Err(err);
    }
    // The index exists with another retention: change it in place.
    let command = doc! {
        "collMod": crate::INVOCATIONS,
        "index": { "keyPattern": { field::EXPIRE_AT: 1 }, "expireAfterSeconds": secs as i64 },
    };
    match db.run_command(command).run() {
        Ok(_) => tracing::info!(retention_secs = secs, "changed the retention of finished invocations"),
        Err(err) => tracing::warn!(
            "cannot change the retention of finished invocations to {secs} s ({}); the old one stays",
            err.kind
        ),
    }
    Ok(())
}
