//! [`Events`] in SQLite: the tables of schema version 13 (`schema.rs`
//! describes them).
//!
//! # Transactions
//!
//! Every call that writes runs in one `IMMEDIATE` transaction ([`write`]),
//! which takes the database's write lock before it reads anything, as
//! claims of invocations do: two connections (two servers on one file)
//! never both read a partition's lease as free, or the same next offset.
//! A batch of [`publish`](Events::publish) is one transaction, so its
//! messages are durable together, and a reader never sees an offset taken
//! and not yet written: offsets are taken and written in the transaction
//! that commits them. A call that reads more than one statement runs them
//! in one deferred transaction ([`read`]), so they see one snapshot.
//!
//! # Costs
//!
//! - A topic's retained message count and bytes are kept in its row by
//!   `publish` and `purge_messages`, so `get_topic` reads a row, and one
//!   search of the primary key of `messages` per partition for its first
//!   retained offset.
//! - `publish` reads each partition's next offset once a call and writes
//!   it back once, and looks an idempotency key up in its partial unique
//!   index.
//! - `purge_messages` deletes by age through `messages_age`, and for the
//!   size walks the same index from its oldest entry, only as far as it
//!   deletes.
//! - `read_messages` is one range of the primary key.
//! - Claims, renewals, commits and releases touch one partition's rows.
//! - `get_subscription` counts each partition's pending entries and the
//!   subscription's dead letters from their primary keys: both lists are
//!   what an operator has to deal with, not the log.
//! - A subscription created or reset at a time (`Position::Time`) walks
//!   each partition from its first retained message to the first one
//!   published at or after that time: rare operator calls.
//!
//! [`write`]: SqliteStore::write
//! [`read`]: SqliteStore::read

use std::collections::{BTreeSet, HashMap};

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::{error, sql_limit, SqliteStore};
use crate::{
    DeadLetter, DeliveryCommit, Events, Message, NewMessage, PartitionLog, PartitionState, Pending, Position,
    Published, Result, StoreError, Subscription, SubscriptionInfo, SubscriptionPartition, Topic, TopicInfo,
};

/// Why a call inside a transaction stopped: SQLite failed, or the store
/// has its own answer (`LeaseLost`, `AlreadyExists`, a row it cannot
/// decode). Either way the transaction rolls back.
pub(super) enum Failure {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Failure {
    fn from(err: rusqlite::Error) -> Self {
        Self::Sql(err)
    }
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

/// The result of the work inside a transaction.
pub(super) type Attempt<T> = std::result::Result<T, Failure>;

impl SqliteStore {
    /// Runs `work` in one `IMMEDIATE` transaction, committed if `work`
    /// succeeds and rolled back if it fails.
    pub(super) fn write<T>(&self, work: impl FnOnce(&Connection) -> Attempt<T>) -> Result<T> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        let value = work(&tx).map_err(|f| self.fail(f))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(value)
    }

    /// Runs `work`, which only reads, in one deferred transaction: its
    /// statements see the database as one moment left it.
    pub(super) fn read<T>(&self, work: impl FnOnce(&Connection) -> Attempt<T>) -> Result<T> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred).map_err(|e| self.err(e))?;
        let value = work(&tx).map_err(|f| self.fail(f))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(value)
    }

    fn fail(&self, failure: Failure) -> StoreError {
        match failure {
            Failure::Sql(err) => self.err(err),
            Failure::Store(err) => err,
        }
    }
}

fn lease_lost(subscription: &str, partition: u32) -> Failure {
    Failure::Store(StoreError::LeaseLost { subscription: subscription.to_owned(), partition })
}

/// The bits of a `u64` as SQLite's `INTEGER`, and back (as `row.rs` does).
fn u64_to_db(value: u64) -> i64 {
    value as i64
}

fn u64_from_db(value: i64) -> u64 {
    value as u64
}

/// A count kept or counted by SQLite, which is never negative.
fn count(value: i64) -> u64 {
    value.max(0) as u64
}

/// Reads a message from the columns `part, off, msg_key, payload,
/// published` (of `messages`, `subscription_pending` or `dead_letters`),
/// from column `first` on.
fn message(row: &Row<'_>, first: usize) -> rusqlite::Result<Message> {
    Ok(Message {
        partition: row.get(first)?,
        offset: row.get(first + 1)?,
        key: row.get(first + 2)?,
        payload: row.get(first + 3)?,
        published: row.get(first + 4)?,
    })
}

/// Columns of a pending entry in the order [`pending`] reads them.
const PENDING_COLUMNS: &str = "part, off, msg_key, payload, published, attempts, not_before, last_error";

fn pending(row: &Row<'_>) -> rusqlite::Result<Pending> {
    Ok(Pending { message: message(row, 0)?, attempts: row.get(5)?, not_before: row.get(6)?, last_error: row.get(7)? })
}

/// Writes (or replaces) the pending entry `entry` of a subscription's
/// partition.
fn put_pending(conn: &Connection, sub_id: i64, partition: u32, entry: &Pending) -> rusqlite::Result<()> {
    let m = &entry.message;
    conn.prepare_cached(&format!(
        "INSERT INTO subscription_pending (sub_id, {PENDING_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (sub_id, part, off) DO UPDATE SET msg_key = excluded.msg_key, payload = excluded.payload, \
         published = excluded.published, attempts = excluded.attempts, not_before = excluded.not_before, \
         last_error = excluded.last_error"
    ))?
    .execute(params![
        sub_id,
        partition,
        m.offset,
        m.key,
        m.payload,
        m.published,
        entry.attempts,
        entry.not_before,
        entry.last_error
    ])?;
    Ok(())
}

/// Columns of a dead letter in the order [`dead_letter`] reads them.
const DEAD_COLUMNS: &str = "part, off, msg_key, payload, published, attempts, error, logs, invocation, died";

/// A dead letter of `subscription`, with its logs still the JSON text the
/// row holds: [`with_logs`] decodes them, outside the row's closure, so
/// that a bad value is `Corrupt` with the letter named.
fn dead_letter(row: &Row<'_>, subscription: &str) -> rusqlite::Result<(DeadLetter, String)> {
    let letter = DeadLetter {
        subscription: subscription.to_owned(),
        message: message(row, 0)?,
        attempts: row.get(5)?,
        error: row.get(6)?,
        logs: Vec::new(),
        invocation: row.get(8)?,
        died: row.get(9)?,
    };
    Ok((letter, row.get(7)?))
}

/// Completes a dead letter read by [`dead_letter`] with its logs.
fn with_logs((mut letter, logs): (DeadLetter, String)) -> Result<DeadLetter> {
    letter.logs = serde_json::from_str(&logs).map_err(|err| {
        StoreError::Corrupt(format!(
            "logs of dead letter {}/{} of subscription '{}': {err}",
            letter.message.partition, letter.message.offset, letter.subscription
        ))
    })?;
    Ok(letter)
}

/// The `id` and `partitions` of the topic named `name`.
fn topic_row(conn: &Connection, name: &str) -> rusqlite::Result<Option<(i64, u32)>> {
    conn.prepare_cached("SELECT id, partitions FROM topics WHERE name = ?1")?
        .query_row([name], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
}

/// The `id` of the subscription named `name`.
fn subscription_id(conn: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM subscriptions WHERE name = ?1")?.query_row([name], |row| row.get(0)).optional()
}

/// The offset of the oldest retained message of a partition, if any.
fn first_offset(conn: &Connection, topic_id: i64, partition: u32) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT off FROM messages WHERE topic_id = ?1 AND part = ?2 ORDER BY off LIMIT 1")?
        .query_row(params![topic_id, partition], |row| row.get(0))
        .optional()
}

/// Where a cursor at `position` is in a partition whose next offset is
/// `next`.
fn cursor_at(conn: &Connection, topic_id: i64, partition: u32, next: i64, position: Position) -> rusqlite::Result<i64> {
    Ok(match position {
        Position::Beginning => first_offset(conn, topic_id, partition)?.unwrap_or(next),
        Position::End => next,
        Position::Offset(offset) => offset.min(next).max(first_offset(conn, topic_id, partition)?.unwrap_or(next)),
        Position::Time(time) => conn
            .prepare_cached(
                "SELECT off FROM messages WHERE topic_id = ?1 AND part = ?2 AND published >= ?3 ORDER BY off LIMIT 1",
            )?
            .query_row(params![topic_id, partition, time], |row| row.get(0))
            .optional()?
            .unwrap_or(next),
    })
}

/// Topics with their partitions, one row per partition (one with `NULL`s
/// for a topic without any), in name then partition order. The
/// placeholder is the condition on `t`.
const TOPIC_ROWS: &str = "\
    SELECT t.name, t.partitions, t.retention_ms, t.retention_bytes, t.created, t.messages, t.bytes, \
        p.part, p.next_off, \
        (SELECT m.off FROM messages m WHERE m.topic_id = p.topic_id AND m.part = p.part ORDER BY m.off LIMIT 1) \
    FROM topics t LEFT JOIN topic_partitions p ON p.topic_id = t.id \
    WHERE {where} ORDER BY t.name, p.part";

/// Gathers rows of [`TOPIC_ROWS`] into topics.
fn topic_infos(conn: &Connection, condition: &str, args: impl rusqlite::Params) -> rusqlite::Result<Vec<TopicInfo>> {
    let mut stmt = conn.prepare_cached(&TOPIC_ROWS.replace("{where}", condition))?;
    let mut rows = stmt.query(args)?;
    let mut infos: Vec<TopicInfo> = Vec::new();
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        if infos.last().is_none_or(|info| info.topic.name != name) {
            infos.push(TopicInfo {
                topic: Topic {
                    name,
                    partitions: row.get(1)?,
                    retention_ms: row.get(2)?,
                    retention_bytes: row.get::<_, Option<i64>>(3)?.map(u64_from_db),
                    created: row.get(4)?,
                },
                partitions: Vec::new(),
                messages: count(row.get(5)?),
                bytes: count(row.get(6)?),
            });
        }
        let Some(next) = row.get::<_, Option<i64>>(8)? else { continue };
        let first = row.get::<_, Option<i64>>(9)?.unwrap_or(next);
        if let Some(info) = infos.last_mut() {
            info.partitions.push(PartitionLog { first, next });
        }
    }
    Ok(infos)
}

/// Subscriptions with their partitions, one row per partition, in name
/// then partition order; `?1` is the time that decides whose lease lives,
/// and the placeholder the condition on `s`.
const SUBSCRIPTION_ROWS: &str = "\
    SELECT s.id, s.name, t.name, s.action, s.batch_size, s.max_wait_ms, s.max_retries, s.backoff_ms, \
        s.backoff_max_ms, s.created, \
        sp.part, sp.cursor, CASE WHEN sp.lease_until >= ?1 THEN sp.owner END, sp.epoch, \
        (SELECT count(*) FROM subscription_pending q WHERE q.sub_id = sp.sub_id AND q.part = sp.part) \
    FROM subscriptions s JOIN topics t ON t.id = s.topic_id \
        LEFT JOIN subscription_partitions sp ON sp.sub_id = s.id \
    WHERE {where} ORDER BY s.name, sp.part";

/// Gathers rows of [`SUBSCRIPTION_ROWS`] into subscriptions, with their
/// dead letters counted.
fn subscription_infos(
    conn: &Connection,
    condition: &str,
    args: impl rusqlite::Params,
) -> rusqlite::Result<Vec<SubscriptionInfo>> {
    let mut ids = Vec::new();
    let mut infos: Vec<SubscriptionInfo> = Vec::new();
    {
        let mut stmt = conn.prepare_cached(&SUBSCRIPTION_ROWS.replace("{where}", condition))?;
        let mut rows = stmt.query(args)?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            if ids.last() != Some(&id) {
                ids.push(id);
                infos.push(SubscriptionInfo {
                    subscription: Subscription {
                        name: row.get(1)?,
                        topic: row.get(2)?,
                        action: row.get(3)?,
                        batch_size: row.get(4)?,
                        max_wait_ms: row.get(5)?,
                        max_retries: row.get(6)?,
                        backoff_ms: row.get(7)?,
                        backoff_max_ms: row.get(8)?,
                        created: row.get(9)?,
                    },
                    partitions: Vec::new(),
                    dead: 0,
                });
            }
            let Some(cursor) = row.get::<_, Option<i64>>(11)? else { continue };
            if let Some(info) = infos.last_mut() {
                info.partitions.push(SubscriptionPartition {
                    cursor,
                    owner: row.get(12)?,
                    epoch: row.get(13)?,
                    pending: count(row.get(14)?),
                });
            }
        }
    }
    let mut dead = conn.prepare_cached("SELECT count(*) FROM dead_letters WHERE sub_id = ?1")?;
    for (info, id) in infos.iter_mut().zip(ids) {
        info.dead = count(dead.query_row([id], |row| row.get(0))?);
    }
    Ok(infos)
}

/// Deletes the pending entries, dead letters and partitions of the
/// subscriptions that `condition` (on `sub_id`, with `?1`) selects.
fn delete_subscription_rows(conn: &Connection, condition: &str, id: i64) -> rusqlite::Result<()> {
    for table in ["subscription_pending", "dead_letters", "subscription_partitions"] {
        conn.prepare_cached(&format!("DELETE FROM {table} WHERE {condition}"))?.execute([id])?;
    }
    Ok(())
}

/// The subscription's id, if `owner` holds the partition at `epoch`;
/// `LeaseLost` otherwise.
fn held(conn: &Connection, subscription: &str, partition: u32, owner: &str, epoch: i64) -> Attempt<i64> {
    conn.prepare_cached(
        "SELECT sp.sub_id FROM subscriptions s \
         JOIN subscription_partitions sp ON sp.sub_id = s.id AND sp.part = ?2 \
         WHERE s.name = ?1 AND sp.owner = ?3 AND sp.epoch = ?4",
    )?
    .query_row(params![subscription, partition, owner, epoch], |row| row.get(0))
    .optional()?
    .ok_or_else(|| lease_lost(subscription, partition))
}

/// Releases a subscription's partition at a higher epoch: a change made by
/// someone else than its owner.
fn take_away(conn: &Connection, sub_id: i64, partition: u32) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE subscription_partitions SET owner = NULL, lease_until = 0, epoch = epoch + 1 \
         WHERE sub_id = ?1 AND part = ?2",
    )?
    .execute(params![sub_id, partition])?;
    Ok(())
}

/// Dead letters of a subscription, all of them or the one at
/// (partition, offset), whose partition the subscription has: as
/// `part, off, msg_key, payload, published, error`.
fn dead_to_redrive(
    conn: &Connection,
    sub_id: i64,
    one: Option<(u32, i64)>,
) -> rusqlite::Result<Vec<(Message, String)>> {
    const SELECT: &str = "SELECT d.part, d.off, d.msg_key, d.payload, d.published, d.error FROM dead_letters d \
         JOIN subscription_partitions sp ON sp.sub_id = d.sub_id AND sp.part = d.part WHERE d.sub_id = ?1";
    let read = |row: &Row<'_>| Ok((message(row, 0)?, row.get(5)?));
    match one {
        Some((partition, offset)) => conn
            .prepare_cached(&format!("{SELECT} AND d.part = ?2 AND d.off = ?3"))?
            .query_map(params![sub_id, partition, offset], read)?
            .collect(),
        None => conn.prepare_cached(SELECT)?.query_map([sub_id], read)?.collect(),
    }
}

impl Events for SqliteStore {
    fn create_topic(&self, topic: &Topic) -> Result<()> {
        self.write(|conn| {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO topics (name, partitions, retention_ms, retention_bytes, created) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    topic.name,
                    topic.partitions,
                    topic.retention_ms,
                    topic.retention_bytes.map(u64_to_db),
                    topic.created
                ]);
            match inserted {
                Ok(_) => {}
                Err(err) if error::is_unique_violation(&err) => {
                    return Err(StoreError::AlreadyExists(topic.name.clone()).into())
                }
                Err(err) => return Err(err.into()),
            }
            let id = conn.last_insert_rowid();
            let mut partition = conn.prepare_cached("INSERT INTO topic_partitions (topic_id, part) VALUES (?1, ?2)")?;
            for p in 0..topic.partitions {
                partition.execute(params![id, p])?;
            }
            Ok(())
        })
    }

    fn set_topic_retention(&self, name: &str, retention_ms: Option<i64>, retention_bytes: Option<u64>) -> Result<bool> {
        self.write(|conn| {
            let changed = conn
                .prepare_cached("UPDATE topics SET retention_ms = ?2, retention_bytes = ?3 WHERE name = ?1")?
                .execute(params![name, retention_ms, retention_bytes.map(u64_to_db)])?;
            Ok(changed > 0)
        })
    }

    fn get_topic(&self, name: &str) -> Result<Option<TopicInfo>> {
        self.read(|conn| Ok(topic_infos(conn, "t.name = ?1", [name])?.pop()))
    }

    fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        self.read(|conn| Ok(topic_infos(conn, "1", [])?))
    }

    fn delete_topic(&self, name: &str) -> Result<bool> {
        self.write(|conn| {
            let Some((id, _)) = topic_row(conn, name)? else { return Ok(false) };
            delete_subscription_rows(conn, "sub_id IN (SELECT id FROM subscriptions WHERE topic_id = ?1)", id)?;
            for sql in [
                "DELETE FROM subscriptions WHERE topic_id = ?1",
                "DELETE FROM messages WHERE topic_id = ?1",
                "DELETE FROM topic_partitions WHERE topic_id = ?1",
                "DELETE FROM topics WHERE id = ?1",
            ] {
                conn.prepare_cached(sql)?.execute([id])?;
            }
            Ok(true)
        })
    }

    /// One transaction: each partition's next offset is read when the call
    /// first appends to it and written back at the end, with each topic's
    /// count and bytes; a message's idempotency key is looked up in the
    /// partial unique index, which holds the earlier messages of the call
    /// too.
    fn publish(&self, messages: &[NewMessage], now_ms: i64) -> Result<Vec<Published>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|conn| {
            let mut topics: HashMap<&str, Option<(i64, u32)>> = HashMap::new();
            let mut next: HashMap<(i64, u32), i64> = HashMap::new();
            let mut added: HashMap<i64, (i64, i64)> = HashMap::new();
            let mut answers = Vec::with_capacity(messages.len());
            let mut holder =
                conn.prepare_cached("SELECT part, off FROM messages WHERE topic_id = ?1 AND idem_key = ?2")?;
            let mut next_off =
                conn.prepare_cached("SELECT next_off FROM topic_partitions WHERE topic_id = ?1 AND part = ?2")?;
            let mut insert = conn.prepare_cached(
                "INSERT INTO messages (topic_id, part, off, published, size, msg_key, payload, idem_key) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for m in messages {
                let topic = match topics.get(m.topic.as_str()) {
                    Some(&topic) => topic,
                    None => {
                        let topic = topic_row(conn, &m.topic)?;
                        topics.insert(&m.topic, topic);
                        topic
                    }
                };
                let Some((topic_id, _)) = topic.filter(|&(_, partitions)| m.partition < partitions) else {
                    answers.push(Published::NoTopic);
                    continue;
                };
                if let Some(key) = &m.idempotency_key {
                    let found =
                        holder.query_row(params![topic_id, key], |row| Ok((row.get(0)?, row.get(1)?))).optional()?;
                    if let Some((partition, offset)) = found {
                        answers.push(Published::Existing { partition, offset });
                        continue;
                    }
                }
                let offset = match next.get(&(topic_id, m.partition)) {
                    Some(&offset) => offset,
                    None => next_off
                        .query_row(params![topic_id, m.partition], |row| row.get(0))
                        .optional()?
                        .ok_or_else(|| {
                            StoreError::Corrupt(format!(
                                "partition {} of topic '{}' has no next offset ({})",
                                m.partition, m.topic, self.label
                            ))
                        })?,
                };
                let size = m.payload.len() + m.key.as_ref().map_or(0, String::len);
                let size = i64::try_from(size).unwrap_or(i64::MAX);
                insert.execute(params![
                    topic_id,
                    m.partition,
                    offset,
                    now_ms,
                    size,
                    m.key,
                    m.payload,
                    m.idempotency_key
                ])?;
                next.insert((topic_id, m.partition), offset + 1);
                let total = added.entry(topic_id).or_default();
                total.0 += 1;
                total.1 = total.1.saturating_add(size);
                answers.push(Published::New { partition: m.partition, offset });
            }
            let mut set_next =
                conn.prepare_cached("UPDATE topic_partitions SET next_off = ?3 WHERE topic_id = ?1 AND part = ?2")?;
            for ((topic_id, partition), offset) in next {
                set_next.execute(params![topic_id, partition, offset])?;
            }
            let mut add =
                conn.prepare_cached("UPDATE topics SET messages = messages + ?2, bytes = bytes + ?3 WHERE id = ?1")?;
            for (topic_id, (messages, bytes)) in added {
                add.execute(params![topic_id, messages, bytes])?;
            }
            Ok(answers)
        })
    }

    fn read_messages(
        &self,
        topic: &str,
        partition: u32,
        from: i64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Message>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let conn = self.lock();
        let mut read = Vec::new();
        let mut stmt = conn
            .prepare_cached(
                "SELECT m.part, m.off, m.msg_key, m.payload, m.published FROM topics t \
                 JOIN messages m ON m.topic_id = t.id AND m.part = ?2 AND m.off >= ?3 \
                 WHERE t.name = ?1 ORDER BY m.off LIMIT ?4",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query(params![topic, partition, from, sql_limit(limit)]).map_err(|e| self.err(e))?;
        let mut bytes = 0u64;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let m = message(row, 0).map_err(|e| self.err(e))?;
            bytes = bytes.saturating_add(m.size());
            read.push(m);
            if bytes >= max_bytes as u64 {
                break;
            }
        }
        Ok(read)
    }

    /// Deletes by age with one statement on `messages_age`; then, for the
    /// size, walks that index from its oldest entry (ties in append order)
    /// and deletes the rows it passed, by rowid.
    fn purge_messages(&self, topic: &str, before_ms: Option<i64>, max_bytes: Option<u64>) -> Result<u64> {
        if before_ms.is_none() && max_bytes.is_none() {
            return Ok(0);
        }
        self.write(|conn| {
            let Some((id, bytes)) = conn
                .prepare_cached("SELECT id, bytes FROM topics WHERE name = ?1")?
                .query_row([topic], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))
                .optional()?
            else {
                return Ok(0);
            };
            let (mut deleted, mut freed) = (0u64, 0u64);
            if let Some(before) = before_ms {
                let mut stmt =
                    conn.prepare_cached("DELETE FROM messages WHERE topic_id = ?1 AND published < ?2 RETURNING size")?;
                let mut rows = stmt.query(params![id, before])?;
                while let Some(row) = rows.next()? {
                    deleted += 1;
                    freed += count(row.get(0)?);
                }
            }
            let mut retained = count(bytes).saturating_sub(freed);
            if let Some(max) = max_bytes.filter(|&max| retained > max) {
                let mut doomed = Vec::new();
                {
                    let mut stmt = conn.prepare_cached(
                        "SELECT rowid, size FROM messages WHERE topic_id = ?1 ORDER BY published, rowid",
                    )?;
                    let mut rows = stmt.query([id])?;
                    while retained > max {
                        let Some(row) = rows.next()? else { break };
                        let size = count(row.get(1)?);
                        doomed.push(row.get::<_, i64>(0)?);
                        retained = retained.saturating_sub(size);
                        freed += size;
                    }
                }
                let mut delete = conn.prepare_cached("DELETE FROM messages WHERE rowid = ?1")?;
                for rowid in &doomed {
                    delete.execute([rowid])?;
                }
                deleted += doomed.len() as u64;
            }
            if deleted > 0 {
                conn.prepare_cached("UPDATE topics SET messages = messages - ?2, bytes = bytes - ?3 WHERE id = ?1")?
                    .execute(params![id, u64_to_db(deleted), u64_to_db(freed)])?;
            }
            Ok(deleted)
        })
    }

    fn create_subscription(&self, subscription: &Subscription, start: Position) -> Result<()> {
        self.write(|conn| {
            if subscription_id(conn, &subscription.name)?.is_some() {
                return Err(StoreError::AlreadyExists(subscription.name.clone()).into());
            }
            let Some((topic_id, _)) = topic_row(conn, &subscription.topic)? else {
                return Err(StoreError::NotFound(subscription.topic.clone()).into());
            };
            let s = subscription;
            conn.prepare_cached(
                "INSERT INTO subscriptions (name, topic_id, action, batch_size, max_wait_ms, max_retries, \
                 backoff_ms, backoff_max_ms, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                s.name,
                topic_id,
                s.action,
                s.batch_size,
                s.max_wait_ms,
                s.max_retries,
                s.backoff_ms,
                s.backoff_max_ms,
                s.created
            ])?;
            let sub_id = conn.last_insert_rowid();
            let partitions: Vec<(u32, i64)> = conn
                .prepare_cached("SELECT part, next_off FROM topic_partitions WHERE topic_id = ?1 ORDER BY part")?
                .query_map([topic_id], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut insert =
                conn.prepare_cached("INSERT INTO subscription_partitions (sub_id, part, cursor) VALUES (?1, ?2, ?3)")?;
            for (partition, next) in partitions {
                let cursor = cursor_at(conn, topic_id, partition, next, start)?;
                insert.execute(params![sub_id, partition, cursor])?;
            }
            Ok(())
        })
    }

    fn get_subscription(&self, name: &str, now_ms: i64) -> Result<Option<SubscriptionInfo>> {
        self.read(|conn| Ok(subscription_infos(conn, "s.name = ?2", params![now_ms, name])?.pop()))
    }

    fn list_subscriptions(&self, now_ms: i64) -> Result<Vec<SubscriptionInfo>> {
        self.read(|conn| Ok(subscription_infos(conn, "1", [now_ms])?))
    }

    fn delete_subscription(&self, name: &str) -> Result<bool> {
        self.write(|conn| {
            let Some(id) = subscription_id(conn, name)? else { return Ok(false) };
            delete_subscription_rows(conn, "sub_id = ?1", id)?;
            conn.prepare_cached("DELETE FROM subscriptions WHERE id = ?1")?.execute([id])?;
            Ok(true)
        })
    }

    fn claim_partition(
        &self,
        subscription: &str,
        partition: u32,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<PartitionState>> {
        self.write(|conn| {
            let found = conn
                .prepare_cached(
                    "SELECT sp.sub_id, sp.owner, sp.lease_until, sp.epoch, sp.cursor FROM subscriptions s \
                     JOIN subscription_partitions sp ON sp.sub_id = s.id AND sp.part = ?2 WHERE s.name = ?1",
                )?
                .query_row(params![subscription, partition], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, Option<String>>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, i64>(4)?,
                    ))
                })
                .optional()?;
            let Some((sub_id, holder, lease_until, epoch, cursor)) = found else { return Ok(None) };
            let epoch = match holder.as_deref() {
                Some(holder) if holder == owner => epoch,
                Some(_) if lease_until >= now_ms => return Ok(None),
                _ => epoch + 1,
            };
            conn.prepare_cached(
                "UPDATE subscription_partitions SET owner = ?3, lease_until = ?4, epoch = ?5 \
                 WHERE sub_id = ?1 AND part = ?2",
            )?
            .execute(params![sub_id, partition, owner, now_ms.saturating_add(lease_ms), epoch])?;
            let entries = conn
                .prepare_cached(&format!(
                    "SELECT {PENDING_COLUMNS} FROM subscription_pending WHERE sub_id = ?1 AND part = ?2 ORDER BY off"
                ))?
                .query_map(params![sub_id, partition], pending)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Some(PartitionState { epoch, cursor, pending: entries }))
        })
    }

    fn renew_partition(
        &self,
        subscription: &str,
        partition: u32,
        owner: &str,
        epoch: i64,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<()> {
        self.write(|conn| {
            let renewed = conn
                .prepare_cached(
                    "UPDATE subscription_partitions SET lease_until = ?5 \
                     WHERE sub_id = (SELECT id FROM subscriptions WHERE name = ?1) AND part = ?2 \
                     AND owner = ?3 AND epoch = ?4",
                )?
                .execute(params![subscription, partition, owner, epoch, now_ms.saturating_add(lease_ms)])?;
            if renewed == 0 {
                return Err(lease_lost(subscription, partition));
            }
            Ok(())
        })
    }

    fn release_partition(&self, subscription: &str, partition: u32, owner: &str, epoch: i64) -> Result<()> {
        self.write(|conn| {
            conn.prepare_cached(
                "UPDATE subscription_partitions SET owner = NULL, lease_until = 0 \
                 WHERE sub_id = (SELECT id FROM subscriptions WHERE name = ?1) AND part = ?2 \
                 AND owner = ?3 AND epoch = ?4",
            )?
            .execute(params![subscription, partition, owner, epoch])?;
            Ok(())
        })
    }

    fn commit_delivery(&self, commit: &DeliveryCommit) -> Result<()> {
        let logs = commit
            .dead
            .iter()
            .map(|letter| serde_json::to_string(&letter.logs))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|err| StoreError::Corrupt(format!("logs of a dead letter cannot be encoded: {err}")))?;
        self.write(|conn| {
            let c = commit;
            let sub_id = held(conn, &c.subscription, c.partition, &c.owner, c.epoch)?;
            conn.prepare_cached(
                "UPDATE subscription_partitions SET cursor = max(cursor, ?3), lease_until = ?4 \
                 WHERE sub_id = ?1 AND part = ?2",
            )?
            .execute(params![sub_id, c.partition, c.cursor, c.now_ms.saturating_add(c.lease_ms)])?;
            let mut done =
                conn.prepare_cached("DELETE FROM subscription_pending WHERE sub_id = ?1 AND part = ?2 AND off = ?3")?;
            for offset in &c.done {
                done.execute(params![sub_id, c.partition, offset])?;
            }
            for entry in &c.pending {
                put_pending(conn, sub_id, c.partition, entry)?;
            }
            let mut dead = conn.prepare_cached(&format!(
                "INSERT OR REPLACE INTO dead_letters (sub_id, {DEAD_COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ))?;
            for (letter, logs) in c.dead.iter().zip(&logs) {
                let m = &letter.message;
                done.execute(params![sub_id, c.partition, m.offset])?;
                dead.execute(params![
                    sub_id,
                    m.partition,
                    m.offset,
                    m.key,
                    m.payload,
                    m.published,
                    letter.attempts,
                    letter.error,
                    logs,
                    letter.invocation,
                    letter.died
                ])?;
            }
            Ok(())
        })
    }

    fn reset_subscription(&self, name: &str, to: Position) -> Result<Option<Vec<i64>>> {
        self.write(|conn| {
            let Some((sub_id, topic_id)) = conn
                .prepare_cached("SELECT id, topic_id FROM subscriptions WHERE name = ?1")?
                .query_row([name], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))
                .optional()?
            else {
                return Ok(None);
            };
            let partitions: Vec<(u32, i64, Option<i64>)> = conn
                .prepare_cached(
                    "SELECT sp.part, sp.cursor, tp.next_off FROM subscription_partitions sp \
                     LEFT JOIN topic_partitions tp ON tp.topic_id = ?2 AND tp.part = sp.part \
                     WHERE sp.sub_id = ?1 ORDER BY sp.part",
                )?
                .query_map(params![sub_id, topic_id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut set = conn.prepare_cached(
                "UPDATE subscription_partitions SET cursor = ?3, owner = NULL, lease_until = 0, epoch = epoch + 1 \
                 WHERE sub_id = ?1 AND part = ?2",
            )?;
            let mut cursors = Vec::with_capacity(partitions.len());
            for (partition, cursor, next) in partitions {
                let cursor = match next {
                    Some(next) => cursor_at(conn, topic_id, partition, next, to)?,
                    None => cursor,
                };
                set.execute(params![sub_id, partition, cursor])?;
                cursors.push(cursor);
            }
            conn.prepare_cached("DELETE FROM subscription_pending WHERE sub_id = ?1")?.execute([sub_id])?;
            Ok(Some(cursors))
        })
    }

    fn list_dead(&self, subscription: &str, limit: usize) -> Result<Vec<DeadLetter>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = {
            let conn = self.lock();
            conn.prepare_cached(
                "SELECT d.part, d.off, d.msg_key, d.payload, d.published, d.attempts, d.error, d.logs, \
                 d.invocation, d.died FROM subscriptions s JOIN dead_letters d ON d.sub_id = s.id \
                 WHERE s.name = ?1 ORDER BY d.died, d.part, d.off LIMIT ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_map(params![subscription, sql_limit(limit)], |row| dead_letter(row, subscription))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| self.err(e))?
        };
        rows.into_iter().map(with_logs).collect()
    }

    /// Moves each dead letter (of a partition the subscription has) to the
    /// pending list, then releases every partition it moved one into at a
    /// higher epoch.
    fn redrive_dead(&self, subscription: &str, one: Option<(u32, i64)>) -> Result<u64> {
        self.write(|conn| {
            let Some(sub_id) = subscription_id(conn, subscription)? else { return Ok(0) };
            let letters = dead_to_redrive(conn, sub_id, one)?;
            let mut delete =
                conn.prepare_cached("DELETE FROM dead_letters WHERE sub_id = ?1 AND part = ?2 AND off = ?3")?;
            let mut changed = BTreeSet::new();
            for (message, error) in &letters {
                let entry =
                    Pending { message: message.clone(), attempts: 0, not_before: 0, last_error: Some(error.clone()) };
                put_pending(conn, sub_id, message.partition, &entry)?;
                delete.execute(params![sub_id, message.partition, message.offset])?;
                changed.insert(message.partition);
            }
            for partition in changed {
                take_away(conn, sub_id, partition)?;
            }
            Ok(letters.len() as u64)
        })
    }

    fn purge_dead(&self, subscription: &str, one: Option<(u32, i64)>) -> Result<u64> {
        self.write(|conn| {
            let Some(sub_id) = subscription_id(conn, subscription)? else { return Ok(0) };
            let deleted = match one {
                Some((partition, offset)) => conn
                    .prepare_cached("DELETE FROM dead_letters WHERE sub_id = ?1 AND part = ?2 AND off = ?3")?
                    .execute(params![sub_id, partition, offset])?,
                None => conn.prepare_cached("DELETE FROM dead_letters WHERE sub_id = ?1")?.execute([sub_id])?,
            };
            Ok(deleted as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::tests::{plan, vm_steps};
    use crate::Store;

    fn topic(name: &str, partitions: u32) -> Topic {
        Topic { name: name.into(), partitions, retention_ms: None, retention_bytes: None, created: 1 }
    }

    fn message(topic: &str, partition: u32, payload: &str) -> NewMessage {
        NewMessage {
            topic: topic.into(),
            partition,
            key: Some("k".into()),
            payload: payload.into(),
            idempotency_key: None,
        }
    }

    fn subscription(name: &str, topic: &str) -> Subscription {
        Subscription {
            name: name.into(),
            topic: topic.into(),
            action: "a".into(),
            batch_size: 10,
            max_wait_ms: 0,
            max_retries: 1,
            backoff_ms: 10,
            backoff_max_ms: 100,
            created: 1,
        }
    }

    /// The count and bytes of a topic's messages as the rows hold them.
    fn in_rows(store: &SqliteStore, name: &str) -> (u64, u64) {
        store
            .lock()
            .query_row(
                "SELECT count(*), coalesce(sum(m.size), 0) FROM topics t JOIN messages m ON m.topic_id = t.id \
                 WHERE t.name = ?1",
                [name],
                |row| Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64)),
            )
            .unwrap()
    }

    #[test]
    fn statements_use_their_indexes() {
        let store = SqliteStore::open_in_memory().unwrap();
        let idem = plan(&store, "SELECT part, off FROM messages WHERE topic_id = 1 AND idem_key = 'k'");
        assert!(idem.contains("messages_idem"), "{idem}");
        let age = plan(&store, "DELETE FROM messages WHERE topic_id = 1 AND published < 5");
        assert!(age.contains("messages_age"), "{age}");
        let oldest = plan(&store, "SELECT rowid, size FROM messages WHERE topic_id = 1 ORDER BY published, rowid");
        assert!(oldest.contains("messages_age") && !oldest.contains("TEMP B-TREE"), "{oldest}");
        let first = plan(&store, "SELECT off FROM messages WHERE topic_id = 1 AND part = 0 ORDER BY off LIMIT 1");
        assert!(first.contains("SEARCH messages USING") && !first.contains("TEMP B-TREE"), "{first}");
        let read = plan(
            &store,
            "SELECT m.off FROM topics t JOIN messages m ON m.topic_id = t.id AND m.part = 0 AND m.off >= 3 \
             WHERE t.name = 'x' ORDER BY m.off LIMIT 10",
        );
        assert!(!read.contains("SCAN") && !read.contains("TEMP B-TREE"), "{read}");
        let topics = plan(&store, &TOPIC_ROWS.replace("{where}", "t.name = 'x'"));
        assert!(!topics.contains("SCAN m") && !topics.contains("SCAN messages"), "{topics}");
        let subs = plan(&store, &SUBSCRIPTION_ROWS.replace("{where}", "s.name = 'x'").replace("?1", "5"));
        assert!(!subs.contains("SCAN q") && !subs.contains("SCAN subscription_pending"), "{subs}");
        let dead = plan(
            &store,
            "SELECT d.off FROM subscriptions s JOIN dead_letters d ON d.sub_id = s.id \
             WHERE s.name = 'x' ORDER BY d.died, d.part, d.off LIMIT 5",
        );
        assert!(dead.contains("dead_letters_died"), "{dead}");
        let pending = plan(&store, "SELECT off FROM subscription_pending WHERE sub_id = 1 AND part = 0 ORDER BY off");
        assert!(pending.contains("SEARCH") && !pending.contains("TEMP B-TREE"), "{pending}");
    }

    /// The count and bytes kept in a topic's row stay what its rows add up
    /// to through publishes (with keys taken and refused), both purges and
    /// a delete.
    #[test]
    fn the_topic_totals_are_kept_by_every_write() {
        let store = SqliteStore::open_in_memory().unwrap();
        store.create_topic(&topic("t", 3)).unwrap();
        store.create_topic(&topic("u", 1)).unwrap();
        let check = |what: &str| {
            for name in ["t", "u"] {
                let info = store.get_topic(name).unwrap().unwrap();
                assert_eq!((info.messages, info.bytes), in_rows(&store, name), "{name} after {what}");
            }
        };
        for round in 0..5i64 {
            let batch: Vec<NewMessage> = (0..12)
                .map(|i| {
                    let topic = if i % 4 == 3 { "u" } else { "t" };
                    let mut m = message(topic, (i % 3) as u32 % if topic == "u" { 1 } else { 3 }, &"x".repeat(i + 1));
                    m.idempotency_key = (i % 5 == 0).then(|| format!("key-{}", i / 5));
                    m
                })
                .collect();
            store.publish(&batch, 100 * round).unwrap();
            check("a publish");
        }
        assert!(store.purge_messages("t", Some(150), None).unwrap() > 0);
        check("a purge by age");
        assert!(store.purge_messages("t", None, Some(40)).unwrap() > 0);
        check("a purge by size");
        assert!(store.purge_messages("u", Some(250), Some(3)).unwrap() > 0);
        check("a purge by both");
        store.publish(&[message("t", 0, "after"), message("u", 0, "after")], 1_000).unwrap();
        check("a publish after purges");
        assert!(store.delete_topic("t").unwrap());
        let left: i64 = store.lock().query_row("SELECT count(*) FROM messages", [], |row| row.get(0)).unwrap();
        assert_eq!(left as u64, store.get_topic("u").unwrap().unwrap().messages, "only u's messages are left");
    }

    /// A batch is one transaction: when one of its messages cannot be
    /// written, none is, and no offset moves.
    #[test]
    fn a_publish_that_fails_writes_nothing() {
        let store = SqliteStore::open_in_memory().unwrap();
        store.create_topic(&topic("t", 2)).unwrap();
        store.publish(&[message("t", 1, "1")], 1).unwrap();
        // Partition 1's next offset goes back to 0, where a message is.
        store.lock().execute("UPDATE topic_partitions SET next_off = 0 WHERE part = 1", []).unwrap();
        let failed = store.publish(&[message("t", 0, "2"), message("t", 0, "3"), message("t", 1, "4")], 2);
        assert!(matches!(failed, Err(StoreError::Unavailable(_))), "{failed:?}");
        let info = store.get_topic("t").unwrap().unwrap();
        assert_eq!(info.partitions, [PartitionLog { first: 0, next: 0 }, PartitionLog { first: 0, next: 0 }]);
        assert_eq!((info.messages, info.bytes), (1, 2));
        assert_eq!(store.read_messages("t", 0, 0, 10, usize::MAX).unwrap(), vec![]);
    }

    /// Rows the store cannot decode are `Corrupt`, and a call that fails
    /// on one writes nothing.
    #[test]
    fn undecodable_rows_are_corrupt() {
        let store = SqliteStore::open_in_memory().unwrap();
        store.create_topic(&topic("t", 1)).unwrap();
        store.publish(&[message("t", 0, "1"), message("t", 0, "2")], 1).unwrap();
        store.create_subscription(&subscription("s", "t"), Position::Beginning).unwrap();
        let epoch = store.claim_partition("s", 0, "A", 1, 100).unwrap().unwrap().epoch;
        let mut read = store.read_messages("t", 0, 0, 2, usize::MAX).unwrap();
        let (m, died) = (read.remove(0), read.remove(0));
        let dead = DeadLetter {
            subscription: "s".into(),
            message: died,
            attempts: 2,
            error: "e".into(),
            logs: vec!["l".into()],
            invocation: None,
            died: 2,
        };
        let pending = Pending { message: m, attempts: 1, not_before: 5, last_error: None };
        let commit = DeliveryCommit {
            subscription: "s".into(),
            partition: 0,
            owner: "A".into(),
            epoch,
            now_ms: 2,
            lease_ms: 100,
            cursor: 2,
            done: vec![],
            pending: vec![pending],
            dead: vec![dead],
        };
        store.commit_delivery(&commit).unwrap();
        store.lock().execute("UPDATE dead_letters SET logs = 'not json'", []).unwrap();
        assert!(matches!(store.list_dead("s", 10), Err(StoreError::Corrupt(_))));
        store.lock().execute("UPDATE subscription_pending SET attempts = -1", []).unwrap();
        store.lock().execute("UPDATE subscription_partitions SET owner = NULL", []).unwrap();
        assert!(matches!(store.claim_partition("s", 0, "B", 3, 100), Err(StoreError::Corrupt(_))));
        let info = store.get_subscription("s", 3).unwrap().unwrap();
        assert_eq!((info.partitions[0].owner.as_deref(), info.partitions[0].epoch), (None, epoch), "rolled back");
        store.lock().execute("UPDATE topics SET partitions = -3", []).unwrap();
        assert!(matches!(store.get_topic("t"), Err(StoreError::Corrupt(_))));
    }

    /// A database of schema version 12 (before events) gets the events
    /// tables when it is opened, and keeps what it held.
    #[test]
    fn a_version_12_database_gets_the_events_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sl.db");
        let store = SqliteStore::open(&path).unwrap();
        let rec = crate::InvocationRecord::queued("q".into(), "a".into(), serde_json::json!({}), true, 1);
        store.put_invocations(&[rec]).unwrap();
        store
            .lock()
            .execute_batch(
                "DROP TABLE topics; DROP TABLE topic_partitions; DROP TABLE messages; DROP TABLE subscriptions; \
                 DROP TABLE subscription_partitions; DROP TABLE subscription_pending; DROP TABLE dead_letters; \
                 PRAGMA user_version = 12;",
            )
            .unwrap();
        drop(store);
        let store = SqliteStore::open(&path).unwrap();
        let version: i64 = store.lock().pragma_query_value(None, "user_version", |row| row.get(0)).unwrap();
        assert_eq!(version, SqliteStore::SCHEMA_VERSION);
        assert_eq!(store.count_queued().unwrap(), 1);
        store.create_topic(&topic("t", 2)).unwrap();
        assert_eq!(store.publish(&[message("t", 1, "1")], 5).unwrap(), [Published::New { partition: 1, offset: 0 }]);
        store.create_subscription(&subscription("s", "t"), Position::Beginning).unwrap();
        assert!(store.claim_partition("s", 1, "A", 5, 100).unwrap().is_some());
    }

    /// The steps of one round of the delivery paths: publish 20 to a
    /// partition, read them, get the topic, claim, commit them with 5
    /// pending, get the subscription, purge 20 for the size, and 20 by age.
    fn delivery_round(store: &SqliteStore, round: i64) -> [u64; 8] {
        let t = 1_000_000 + round * 1_000;
        let batch: Vec<NewMessage> = (0..20).map(|i| message("t", 0, &sized(i))).collect();
        let mut read = Vec::new();
        let mut state = None;
        let steps = [
            vm_steps(store, || assert_eq!(store.publish(&batch, t).unwrap().len(), 20)),
            vm_steps(store, || {
                let next = store.get_topic("t").unwrap().unwrap().partitions[0].next;
                read = store.read_messages("t", 0, next - 20, 20, usize::MAX).unwrap();
            }),
            vm_steps(store, || assert!(store.get_topic("t").unwrap().unwrap().messages >= 20)),
            vm_steps(store, || state = store.claim_partition("s", 0, "A", t, 60_000).unwrap()),
            vm_steps(store, || {
                let state = state.as_ref().unwrap();
                let commit = DeliveryCommit {
                    subscription: "s".into(),
                    partition: 0,
                    owner: "A".into(),
                    epoch: state.epoch,
                    now_ms: t,
                    lease_ms: 60_000,
                    cursor: read[19].offset + 1,
                    done: state.pending.iter().map(|p| p.message.offset).collect(),
                    pending: read[..5]
                        .iter()
                        .map(|m| Pending { message: m.clone(), attempts: 1, not_before: t, last_error: None })
                        .collect(),
                    dead: vec![],
                };
                store.commit_delivery(&commit).unwrap();
            }),
            vm_steps(store, || assert_eq!(store.get_subscription("s", t).unwrap().unwrap().partitions[0].pending, 5)),
            // The oldest 20 (published at 1 + 2 * round), then the 20
            // published at 2 + 2 * round.
            vm_steps(store, || {
                let bytes = store.get_topic("t").unwrap().unwrap().bytes;
                let twenty: u64 = read.iter().map(Message::size).sum();
                assert_eq!(store.purge_messages("t", None, Some(bytes - twenty)).unwrap(), 20);
            }),
            vm_steps(store, || assert_eq!(store.purge_messages("t", Some(3 + 2 * round), None).unwrap(), 20)),
        ];
        steps
    }

    /// A payload of 10 bytes (a message of 11 with its key).
    fn sized(i: i64) -> String {
        format!("\"{:08}\"", i % 100_000_000)
    }

    /// Publishing, reading, claiming, committing, reading a topic or a
    /// subscription and both purges cost what they take, not what the log
    /// holds: about the same VM steps with 40,000 messages retained (in
    /// the partition read and in 3 others) as with 100. Every message is
    /// of one size, and the log is published 20 at a time, at 1, 2, 3, …
    #[test]
    fn delivery_paths_cost_the_same_on_a_long_log() {
        let fill = |n: i64| {
            let store = SqliteStore::open_in_memory().unwrap();
            store.create_topic(&topic("t", 4)).unwrap();
            for (at, chunk) in (0..n).collect::<Vec<_>>().chunks(20).enumerate() {
                let batch: Vec<NewMessage> = chunk.iter().map(|&i| message("t", (i % 4) as u32, &sized(i))).collect();
                store.publish(&batch, 1 + at as i64).unwrap();
            }
            store.create_subscription(&subscription("s", "t"), Position::End).unwrap();
            store
        };
        let (small, large) = (fill(100), fill(40_000));
        const NAMES: [&str; 8] =
            ["publish", "read", "get_topic", "claim", "commit", "get_subscription", "purge_size", "purge_age"];
        for round in 0..2 {
            let (s, l) = (delivery_round(&small, round), delivery_round(&large, round));
            for (i, name) in NAMES.iter().enumerate() {
                assert!(l[i] <= s[i] * 5 / 4 + 50, "{name}: {} VM steps with 40,000 messages, {} with 100", l[i], s[i]);
            }
        }
    }
}
