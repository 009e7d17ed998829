//! [`Events`] in memory: topics, subscriptions and dead letters behind
//! their own mutex, apart from the [`Store`](crate::Store) state, so that
//! the two never wait for each other.
//!
//! Each topic keeps its partitions' logs as ordered maps from offset to
//! message, the next offset of each, the idempotency keys of its retained
//! messages, and an index of its messages by (publish time, append
//! number) for retention. The append number is one counter for every
//! message of the store: among messages published at the same millisecond
//! it keeps the order they were appended in, so a partition's lower offset
//! goes first, as the contract wants. The topic's message count and bytes
//! are kept as messages come and go.
//!
//! A subscription keeps, for each partition, its cursor, lease and epoch,
//! and its pending list as a map from offset to entry (so a claim hands it
//! back in offset order); its dead letters are a map from (partition,
//! offset). Subscriptions name their topic, and `delete_topic` takes the
//! ones that name it along.
//!
//! Every call runs under the mutex from start to end, so each is atomic,
//! and a reader never sees an offset taken and not yet written.

use std::collections::{BTreeMap, HashMap};

use super::MemoryStore;
use crate::{
    DeadLetter, DeliveryCommit, Events, Message, NewMessage, PartitionLog, PartitionState, Pending, Position,
    Published, Result, StoreError, Subscription, SubscriptionInfo, SubscriptionPartition, Topic, TopicInfo,
};

/// Everything [`Events`] stores.
#[derive(Debug, Default)]
pub(super) struct EventsState {
    /// Topics by name, sorted as `list_topics` wants.
    topics: BTreeMap<String, TopicLog>,
    /// Subscriptions by name, sorted as `list_subscriptions` wants.
    subscriptions: BTreeMap<String, Sub>,
    /// The append number of the next message (see the module docs).
    appended: u64,
}

/// A topic and its log.
#[derive(Debug)]
struct TopicLog {
    topic: Topic,
    partitions: Vec<PartitionLogState>,
    /// The (partition, offset) of the retained message holding each
    /// idempotency key.
    keys: HashMap<String, (u32, i64)>,
    /// (published, append number) to (partition, offset) of every retained
    /// message: the order retention deletes them in.
    by_age: BTreeMap<(i64, u64), (u32, i64)>,
    /// Retained messages and the sum of their sizes.
    messages: u64,
    bytes: u64,
}

/// One partition's log.
#[derive(Debug, Default)]
struct PartitionLogState {
    next: i64,
    log: BTreeMap<i64, Retained>,
}

/// A retained message, with what is needed to delete it.
#[derive(Debug)]
struct Retained {
    message: Message,
    idempotency_key: Option<String>,
    appended: u64,
}

impl PartitionLogState {
    fn first(&self) -> i64 {
        self.log.keys().next().copied().unwrap_or(self.next)
    }

    /// Where a cursor at `position` is in this partition.
    fn cursor_at(&self, position: Position) -> i64 {
        let first = self.first();
        match position {
            Position::Beginning => first,
            Position::End => self.next,
            Position::Offset(offset) => offset.min(self.next).max(first),
            Position::Time(time) => {
                self.log.values().find(|r| r.message.published >= time).map_or(self.next, |r| r.message.offset)
            }
        }
    }
}

impl TopicLog {
    fn new(topic: &Topic) -> Self {
        Self {
            topic: topic.clone(),
            partitions: (0..topic.partitions).map(|_| PartitionLogState::default()).collect(),
            keys: HashMap::new(),
            by_age: BTreeMap::new(),
            messages: 0,
            bytes: 0,
        }
    }

    fn info(&self) -> TopicInfo {
        TopicInfo {
            topic: self.topic.clone(),
            partitions: self.partitions.iter().map(|p| PartitionLog { first: p.first(), next: p.next }).collect(),
            messages: self.messages,
            bytes: self.bytes,
        }
    }

    /// Deletes the message at (`partition`, `offset`), if retained.
    fn remove(&mut self, partition: u32, offset: i64) -> bool {
        let Some(retained) = self.partitions.get_mut(partition as usize).and_then(|p| p.log.remove(&offset)) else {
            return false;
        };
        if let Some(key) = &retained.idempotency_key {
            self.keys.remove(key);
        }
        self.by_age.remove(&(retained.message.published, retained.appended));
        self.messages -= 1;
        self.bytes -= retained.message.size();
        true
    }
}

/// A subscription and its progress.
#[derive(Debug)]
struct Sub {
    subscription: Subscription,
    partitions: Vec<SubPartition>,
    /// Dead letters by (partition, offset).
    dead: BTreeMap<(u32, i64), DeadLetter>,
}

/// A subscription's progress in one partition.
#[derive(Debug)]
struct SubPartition {
    cursor: i64,
    owner: Option<String>,
    lease_until: i64,
    epoch: i64,
    /// Pending entries by offset.
    pending: BTreeMap<i64, Pending>,
}

impl SubPartition {
    /// Whether `owner` holds the partition at `epoch`.
    fn held_by(&self, owner: &str, epoch: i64) -> bool {
        self.owner.as_deref() == Some(owner) && self.epoch == epoch
    }

    /// No owner, at a higher epoch: a change made by someone else than the
    /// owner.
    fn take_away(&mut self) {
        self.owner = None;
        self.lease_until = 0;
        self.epoch += 1;
    }
}

impl Sub {
    fn info(&self, now_ms: i64) -> SubscriptionInfo {
        SubscriptionInfo {
            subscription: self.subscription.clone(),
            partitions: self
                .partitions
                .iter()
                .map(|p| SubscriptionPartition {
                    cursor: p.cursor,
                    pending: p.pending.len() as u64,
                    owner: p.owner.clone().filter(|_| p.lease_until >= now_ms),
                    epoch: p.epoch,
                })
                .collect(),
            dead: self.dead.len() as u64,
        }
    }

    /// The partition `owner` holds at `epoch`, or `LeaseLost`.
    fn held(&mut self, partition: u32, owner: &str, epoch: i64) -> Result<&mut SubPartition> {
        let name = &self.subscription.name;
        match self.partitions.get_mut(partition as usize) {
            Some(p) if p.held_by(owner, epoch) => Ok(p),
            _ => Err(StoreError::LeaseLost { subscription: name.clone(), partition }),
        }
    }
}

fn lease_lost(subscription: &str, partition: u32) -> StoreError {
    StoreError::LeaseLost { subscription: subscription.to_owned(), partition }
}

/// `DeadLetter`s whose key is `one`, or all of them when `one` is `None`.
fn matching(dead: &BTreeMap<(u32, i64), DeadLetter>, one: Option<(u32, i64)>) -> Vec<(u32, i64)> {
    match one {
        Some(key) => dead.contains_key(&key).then_some(key).into_iter().collect(),
        None => dead.keys().copied().collect(),
    }
}

impl EventsState {
    fn publish_one(&mut self, message: &NewMessage, now_ms: i64) -> Published {
        let Some(topic) = self.topics.get_mut(&message.topic) else { return Published::NoTopic };
        let Some(partition) = topic.partitions.get_mut(message.partition as usize) else {
            return Published::NoTopic;
        };
        if let Some(&(partition, offset)) = message.idempotency_key.as_ref().and_then(|key| topic.keys.get(key)) {
            return Published::Existing { partition, offset };
        }
        let offset = partition.next;
        partition.next += 1;
        let stored = Message {
            partition: message.partition,
            offset,
            key: message.key.clone(),
            payload: message.payload.clone(),
            published: now_ms,
        };
        let appended = self.appended;
        self.appended += 1;
        topic.messages += 1;
        topic.bytes += stored.size();
        topic.by_age.insert((now_ms, appended), (message.partition, offset));
        if let Some(key) = &message.idempotency_key {
            topic.keys.insert(key.clone(), (message.partition, offset));
        }
        partition
            .log
            .insert(offset, Retained { message: stored, idempotency_key: message.idempotency_key.clone(), appended });
        Published::New { partition: message.partition, offset }
    }
}

impl MemoryStore {
    fn events_state(&self) -> std::sync::MutexGuard<'_, EventsState> {
        // As for the store's own mutex: every change below is complete
        // before anything that could panic, so a poisoned state is whole.
        self.events.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Events for MemoryStore {
    fn create_topic(&self, topic: &Topic) -> Result<()> {
        let mut state = self.events_state();
        if state.topics.contains_key(&topic.name) {
            return Err(StoreError::AlreadyExists(topic.name.clone()));
        }
        state.topics.insert(topic.name.clone(), TopicLog::new(topic));
        Ok(())
    }

    fn set_topic_retention(&self, name: &str, retention_ms: Option<i64>, retention_bytes: Option<u64>) -> Result<bool> {
        let mut state = self.events_state();
        let Some(topic) = state.topics.get_mut(name) else { return Ok(false) };
        topic.topic.retention_ms = retention_ms;
        topic.topic.retention_bytes = retention_bytes;
        Ok(true)
    }

    fn get_topic(&self, name: &str) -> Result<Option<TopicInfo>> {
        Ok(self.events_state().topics.get(name).map(TopicLog::info))
    }

    fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        Ok(self.events_state().topics.values().map(TopicLog::info).collect())
    }

    fn delete_topic(&self, name: &str) -> Result<bool> {
        let mut state = self.events_state();
        if state.topics.remove(name).is_none() {
            return Ok(false);
        }
        state.subscriptions.retain(|_, sub| sub.subscription.topic != name);
        Ok(true)
    }

    fn publish(&self, messages: &[NewMessage], now_ms: i64) -> Result<Vec<Published>> {
        let mut state = self.events_state();
        Ok(messages.iter().map(|message| state.publish_one(message, now_ms)).collect())
    }

    fn read_messages(
        &self,
        topic: &str,
        partition: u32,
        from: i64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Message>> {
        let state = self.events_state();
        let Some(log) = state.topics.get(topic).and_then(|t| t.partitions.get(partition as usize)) else {
            return Ok(Vec::new());
        };
        let mut read = Vec::new();
        let mut bytes = 0u64;
        for retained in log.log.range(from..).map(|(_, r)| r).take(limit) {
            read.push(retained.message.clone());
            bytes = bytes.saturating_add(retained.message.size());
            if bytes >= max_bytes as u64 {
                break;
            }
        }
        Ok(read)
    }

    fn purge_messages(&self, topic: &str, before_ms: Option<i64>, max_bytes: Option<u64>) -> Result<u64> {
        let mut state = self.events_state();
        let Some(topic) = state.topics.get_mut(topic) else { return Ok(0) };
        let mut deleted = 0;
        if let Some(before) = before_ms {
            let old: Vec<(u32, i64)> = topic.by_age.range(..(before, 0)).map(|(_, &at)| at).collect();
            for (partition, offset) in old {
                deleted += u64::from(topic.remove(partition, offset));
            }
        }
        if let Some(max) = max_bytes {
            while topic.bytes > max {
                let Some((_, &(partition, offset))) = topic.by_age.iter().next() else { break };
                if !topic.remove(partition, offset) {
                    break;
                }
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    fn create_subscription(&self, subscription: &Subscription, start: Position) -> Result<()> {
        let mut state = self.events_state();
        if state.subscriptions.contains_key(&subscription.name) {
            return Err(StoreError::AlreadyExists(subscription.name.clone()));
        }
        let topic =
            state.topics.get(&subscription.topic).ok_or_else(|| StoreError::NotFound(subscription.topic.clone()))?;
        let partitions = topic
            .partitions
            .iter()
            .map(|log| SubPartition {
                cursor: log.cursor_at(start),
                owner: None,
                lease_until: 0,
                epoch: 0,
                pending: BTreeMap::new(),
            })
            .collect();
        let sub = Sub { subscription: subscription.clone(), partitions, dead: BTreeMap::new() };
        state.subscriptions.insert(subscription.name.clone(), sub);
        Ok(())
    }

    fn get_subscription(&self, name: &str, now_ms: i64) -> Result<Option<SubscriptionInfo>> {
        Ok(self.events_state().subscriptions.get(name).map(|sub| sub.info(now_ms)))
    }

    fn list_subscriptions(&self, now_ms: i64) -> Result<Vec<SubscriptionInfo>> {
        Ok(self.events_state().subscriptions.values().map(|sub| sub.info(now_ms)).collect())
    }

    fn delete_subscription(&self, name: &str) -> Result<bool> {
        Ok(self.events_state().subscriptions.remove(name).is_some())
    }

    fn claim_partition(
        &self,
        subscription: &str,
        partition: u32,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<PartitionState>> {
        let mut state = self.events_state();
        let Some(p) = state.subscriptions.get_mut(subscription).and_then(|s| s.partitions.get_mut(partition as usize))
        else {
            return Ok(None);
        };
        match p.owner.as_deref() {
            Some(holder) if holder == owner => {}
            Some(_) if p.lease_until >= now_ms => return Ok(None),
            _ => {
                p.owner = Some(owner.to_owned());
                p.epoch += 1;
            }
        }
        p.lease_until = now_ms.saturating_add(lease_ms);
        Ok(Some(PartitionState { epoch: p.epoch, cursor: p.cursor, pending: p.pending.values().cloned().collect() }))
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
        let mut state = self.events_state();
        let sub = state.subscriptions.get_mut(subscription).ok_or_else(|| lease_lost(subscription, partition))?;
        sub.held(partition, owner, epoch)?.lease_until = now_ms.saturating_add(lease_ms);
        Ok(())
    }

    fn release_partition(&self, subscription: &str, partition: u32, owner: &str, epoch: i64) -> Result<()> {
        let mut state = self.events_state();
        let p = state.subscriptions.get_mut(subscription).and_then(|s| s.partitions.get_mut(partition as usize));
        if let Some(p) = p.filter(|p| p.held_by(owner, epoch)) {
            p.owner = None;
            p.lease_until = 0;
        }
        Ok(())
    }

    fn commit_delivery(&self, commit: &DeliveryCommit) -> Result<()> {
        let mut state = self.events_state();
        let sub = state
            .subscriptions
            .get_mut(&commit.subscription)
            .ok_or_else(|| lease_lost(&commit.subscription, commit.partition))?;
        let p = sub.held(commit.partition, &commit.owner, commit.epoch)?;
        p.cursor = p.cursor.max(commit.cursor);
        p.lease_until = commit.now_ms.saturating_add(commit.lease_ms);
        for offset in &commit.done {
            p.pending.remove(offset);
        }
        for entry in &commit.pending {
            p.pending.insert(entry.message.offset, entry.clone());
        }
        for letter in &commit.dead {
            p.pending.remove(&letter.message.offset);
        }
        for letter in &commit.dead {
            let letter = DeadLetter { subscription: commit.subscription.clone(), ..letter.clone() };
            sub.dead.insert((letter.message.partition, letter.message.offset), letter);
        }
        Ok(())
    }

    fn reset_subscription(&self, name: &str, to: Position) -> Result<Option<Vec<i64>>> {
        let mut state = self.events_state();
        let EventsState { topics, subscriptions, .. } = &mut *state;
        let Some(sub) = subscriptions.get_mut(name) else { return Ok(None) };
        let logs = topics.get(&sub.subscription.topic).map(|t| t.partitions.as_slice()).unwrap_or_default();
        let mut cursors = Vec::with_capacity(sub.partitions.len());
        for (i, p) in sub.partitions.iter_mut().enumerate() {
            if let Some(log) = logs.get(i) {
                p.cursor = log.cursor_at(to);
            }
            p.pending.clear();
            p.take_away();
            cursors.push(p.cursor);
        }
        Ok(Some(cursors))
    }

    fn list_dead(&self, subscription: &str, limit: usize) -> Result<Vec<DeadLetter>> {
        let state = self.events_state();
        let Some(sub) = state.subscriptions.get(subscription) else { return Ok(Vec::new()) };
        let mut letters: Vec<&DeadLetter> = sub.dead.values().collect();
        // Oldest death first; then by (partition, offset), the map's order,
        // which the stable sort keeps.
        letters.sort_by_key(|d| d.died);
        Ok(letters.into_iter().take(limit).cloned().collect())
    }

    fn redrive_dead(&self, subscription: &str, one: Option<(u32, i64)>) -> Result<u64> {
        let mut state = self.events_state();
        let Some(sub) = state.subscriptions.get_mut(subscription) else { return Ok(0) };
        let mut moved = 0;
        let mut changed = vec![false; sub.partitions.len()];
        for key in matching(&sub.dead, one) {
            let Some(p) = sub.partitions.get_mut(key.0 as usize) else { continue };
            let Some(letter) = sub.dead.remove(&key) else { continue };
            let entry = Pending { message: letter.message, attempts: 0, not_before: 0, last_error: Some(letter.error) };
            p.pending.insert(key.1, entry);
            changed[key.0 as usize] = true;
            moved += 1;
        }
        for (p, _) in sub.partitions.iter_mut().zip(changed).filter(|(_, changed)| *changed) {
            p.take_away();
        }
        Ok(moved)
    }

    fn purge_dead(&self, subscription: &str, one: Option<(u32, i64)>) -> Result<u64> {
        let mut state = self.events_state();
        let Some(sub) = state.subscriptions.get_mut(subscription) else { return Ok(0) };
        let doomed = matching(&sub.dead, one);
        for key in &doomed {
            sub.dead.remove(key);
        }
        Ok(doomed.len() as u64)
    }
}
