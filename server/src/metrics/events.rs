//! What the server counts of events and schedules: per subscription, the messages its
//! batches delivered, the retries and the dead letters made (counters
//! shared by the process's workers, updated once per batch, off the hot
//! path of requests); and what a scrape reads from the store: each
//! topic's retained messages and bytes, each subscription's backlog, lag
//! and dead letters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use super::text::{Exposition, Type};

/// The counters of one subscription, summed over the process's workers.
#[derive(Debug, Default)]
pub struct SubscriptionMetrics {
    delivered: AtomicU64,
    batches: AtomicU64,
    retries: AtomicU64,
    dead: AtomicU64,
}

impl SubscriptionMetrics {
    /// Counts a batch of `messages` whose outcome retried `retries` of
    /// them and made `dead` dead letters.
    pub fn batch(&self, messages: u64, retries: u64, dead: u64) {
        self.batches.fetch_add(1, Relaxed);
        self.delivered.fetch_add(messages, Relaxed);
        self.retries.fetch_add(retries, Relaxed);
        self.dead.fetch_add(dead, Relaxed);
    }
}

/// Every subscription's counters, by name.
#[derive(Debug, Default)]
pub(super) struct Subscriptions(Mutex<BTreeMap<String, Arc<SubscriptionMetrics>>>);

impl Subscriptions {
    pub(super) fn get(&self, name: &str) -> Arc<SubscriptionMetrics> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(map.entry(name.to_owned()).or_default())
    }

    fn list(&self) -> Vec<(String, Arc<SubscriptionMetrics>)> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(k, v)| (k.clone(), Arc::clone(v))).collect()
    }
}

/// The counters of one schedule's firings made by this server.
#[derive(Debug, Default)]
pub struct ScheduleMetrics {
    fired: AtomicU64,
    skipped: AtomicU64,
    /// Milliseconds between the last firing's scheduled time and its
    /// enqueue.
    lag_ms: AtomicU64,
}

impl ScheduleMetrics {
    /// Counts a firing made (or skipped) `lag_ms` after its scheduled time.
    pub fn fired(&self, lag_ms: i64, skipped: bool) {
        if skipped {
            self.skipped.fetch_add(1, Relaxed);
        } else {
            self.fired.fetch_add(1, Relaxed);
            self.lag_ms.store(lag_ms.max(0) as u64, Relaxed);
        }
    }
}

/// Every schedule's counters, by name.
#[derive(Debug, Default)]
pub(super) struct ScheduleCounters(Mutex<BTreeMap<String, Arc<ScheduleMetrics>>>);

impl ScheduleCounters {
    pub(super) fn get(&self, name: &str) -> Arc<ScheduleMetrics> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(map.entry(name.to_owned()).or_default())
    }

    fn list(&self) -> Vec<(String, Arc<ScheduleMetrics>)> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(k, v)| (k.clone(), Arc::clone(v))).collect()
    }
}

/// The schedules' part of the exposition.
pub(super) fn render_schedules(e: &mut Exposition, counters: &ScheduleCounters) {
    let counted = counters.list();
    e.family("sl_schedule_firings_total", Type::Counter, "Firings of schedules made by this server, by schedule.");
    for (name, m) in &counted {
        e.sample("sl_schedule_firings_total", &[("schedule", name.as_str())], m.fired.load(Relaxed));
    }
    e.family(
        "sl_schedule_skipped_total",
        Type::Counter,
        "Firings skipped because the last one still ran (overlap = skip), by schedule.",
    );
    for (name, m) in &counted {
        e.sample("sl_schedule_skipped_total", &[("schedule", name.as_str())], m.skipped.load(Relaxed));
    }
    e.family(
        "sl_schedule_lag_seconds",
        Type::Gauge,
        "Time from the scheduled time of a schedule's last firing made by this server to its enqueue.",
    );
    for (name, m) in &counted {
        e.sample_f64("sl_schedule_lag_seconds", &[("schedule", name.as_str())], m.lag_ms.load(Relaxed) as f64 / 1000.0);
    }
}

/// A topic as a scrape reads it from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicGauges {
    pub name: String,
    pub messages: u64,
    pub bytes: u64,
}

/// A subscription as a scrape reads it from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionGauges {
    pub name: String,
    /// Messages past its cursors, plus its pending ones.
    pub backlog: u64,
    /// Seconds since the oldest message it has not finished was published
    /// (0 with none).
    pub lag_seconds: f64,
    pub dead: u64,
}

/// Picks one of a subscription's counters.
type Pick = fn(&SubscriptionMetrics) -> &AtomicU64;

/// The events' part of the exposition.
pub(super) fn render(
    e: &mut Exposition,
    counters: &Subscriptions,
    topics: Option<&[TopicGauges]>,
    subs: Option<&[SubscriptionGauges]>,
) {
    let counted = counters.list();
    let families: [(&str, &str, Pick); 4] = [
        (
            "sl_subscription_messages_total",
            "Messages delivered to subscriptions' actions (again after a retry), by subscription.",
            |m| &m.delivered,
        ),
        ("sl_subscription_batches_total", "Batches delivered, by subscription.", |m| &m.batches),
        ("sl_subscription_retries_total", "Messages whose delivery is to be retried, by subscription.", |m| &m.retries),
        ("sl_subscription_dead_letters_total", "Messages that became dead letters, by subscription.", |m| &m.dead),
    ];
    for (name, help, get) in families {
        e.family(name, Type::Counter, help);
        for (sub, m) in &counted {
            e.sample(name, &[("subscription", sub.as_str())], get(m).load(Relaxed));
        }
    }
    if let Some(topics) = topics {
        e.family("sl_topic_messages", Type::Gauge, "Messages a topic retains.");
        for t in topics {
            e.sample("sl_topic_messages", &[("topic", t.name.as_str())], t.messages);
        }
        e.family("sl_topic_bytes", Type::Gauge, "Bytes of payloads and keys a topic retains.");
        for t in topics {
            e.sample("sl_topic_bytes", &[("topic", t.name.as_str())], t.bytes);
        }
    }
    if let Some(subs) = subs {
        e.family("sl_subscription_backlog", Type::Gauge, "Messages a subscription has not finished.");
        for s in subs {
            e.sample("sl_subscription_backlog", &[("subscription", s.name.as_str())], s.backlog);
        }
        e.family(
            "sl_subscription_lag_seconds",
            Type::Gauge,
            "Age of the oldest message a subscription has not finished (0 with none).",
        );
        for s in subs {
            e.sample_f64("sl_subscription_lag_seconds", &[("subscription", s.name.as_str())], s.lag_seconds);
        }
        e.family("sl_subscription_dead_letters", Type::Gauge, "Dead letters a subscription holds.");
        for s in subs {
            e.sample("sl_subscription_dead_letters", &[("subscription", s.name.as_str())], s.dead);
        }
    }
}
