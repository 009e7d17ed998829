//! The catch-up and overlap policies: plain enums with one text form each.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ScheduleError;

/// The cap of [`CatchUp::All`] when the text says just `all`.
pub const DEFAULT_CATCH_UP_CAP: u32 = 10;

/// The largest cap [`CatchUp::All`] accepts.
pub const MAX_CATCH_UP_CAP: u32 = 1_000;

/// What to do with the firings that were missed, for example while no server
/// was running: see [`Schedule::due`](crate::Schedule::due) for exactly which
/// firings count as missed.
///
/// Text forms ([`FromStr`], [`fmt::Display`] and serde, case-insensitive on
/// input): `none`, `last`, `all` (meaning `all:10`, the
/// [`DEFAULT_CATCH_UP_CAP`]) and `all:N` with `1 <= N <= 1000`
/// ([`MAX_CATCH_UP_CAP`]). The default is `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum CatchUp {
    /// Skip every missed firing: only on-time firings run, and the schedule
    /// resumes with the first firing after now.
    #[default]
    None,
    /// Run the most recent missed firing only (once, however many were
    /// missed), then resume.
    Last,
    /// Run the missed firings, oldest first, but at most the `cap` most
    /// recent ones; older ones are skipped.
    All {
        /// The most missed firings to run, at least 1.
        cap: u32,
    },
}

impl CatchUp {
    /// How many missed firings this policy runs at most.
    pub fn cap(self) -> u32 {
        match self {
            CatchUp::None => 0,
            CatchUp::Last => 1,
            CatchUp::All { cap } => cap,
        }
    }
}

impl FromStr for CatchUp {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lower = text.trim().to_ascii_lowercase();
        let invalid = || ScheduleError::InvalidCatchUp { text: text.to_string() };
        match lower.as_str() {
            "none" => Ok(CatchUp::None),
            "last" => Ok(CatchUp::Last),
            "all" => Ok(CatchUp::All { cap: DEFAULT_CATCH_UP_CAP }),
            other => {
                let cap = other.strip_prefix("all:").ok_or_else(invalid)?.trim();
                // Digits only: u32's own parser would also take a sign.
                if cap.is_empty() || !cap.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid());
                }
                match cap.parse::<u32>() {
                    Ok(cap) if (1..=MAX_CATCH_UP_CAP).contains(&cap) => Ok(CatchUp::All { cap }),
                    _ => Err(invalid()),
                }
            }
        }
    }
}

impl fmt::Display for CatchUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatchUp::None => f.write_str("none"),
            CatchUp::Last => f.write_str("last"),
            CatchUp::All { cap } => write!(f, "all:{cap}"),
        }
    }
}

impl TryFrom<String> for CatchUp {
    type Error = ScheduleError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<CatchUp> for String {
    fn from(policy: CatchUp) -> String {
        policy.to_string()
    }
}

/// What the server does when a firing comes due while an earlier run of the
/// same schedule is still going. This crate only names the policies; the
/// server applies them.
///
/// Text forms ([`FromStr`], [`fmt::Display`] and serde, case-insensitive on
/// input): `skip`, `queue`, `allow`. The default is `skip`.
///
/// Whatever the policy, a firing that comes due counts as fired: the server
/// records its scheduled time as the schedule's last fired time (see
/// [`Schedule::due`](crate::Schedule::due)), so a skipped firing is not a
/// missed one and is never caught up later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Overlap {
    /// Drop the firing: at most one run of the schedule at a time, and no
    /// backlog builds up behind a slow run.
    #[default]
    Skip,
    /// Start the firing when the running one ends: runs never overlap, and
    /// firings run one after another in scheduled order.
    Queue,
    /// Start the firing at once, next to the running one: runs may overlap.
    Allow,
}

impl FromStr for Overlap {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "skip" => Ok(Overlap::Skip),
            "queue" => Ok(Overlap::Queue),
            "allow" => Ok(Overlap::Allow),
            _ => Err(ScheduleError::InvalidOverlap { text: text.to_string() }),
        }
    }
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
            Overlap::Allow => "allow",
        })
    }
}

impl TryFrom<String> for Overlap {
    type Error = ScheduleError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Overlap> for String {
    fn from(policy: Overlap) -> String {
        policy.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_up_parses_every_form() {
        assert_eq!("none".parse::<CatchUp>().unwrap(), CatchUp::None);
        assert_eq!(" LAST ".parse::<CatchUp>().unwrap(), CatchUp::Last);
        assert_eq!("all".parse::<CatchUp>().unwrap(), CatchUp::All { cap: DEFAULT_CATCH_UP_CAP });
        assert_eq!("all:5".parse::<CatchUp>().unwrap(), CatchUp::All { cap: 5 });
        assert_eq!("All: 1".parse::<CatchUp>().unwrap(), CatchUp::All { cap: 1 });
        assert_eq!("all:1000".parse::<CatchUp>().unwrap(), CatchUp::All { cap: 1000 });
        assert_eq!(CatchUp::default(), CatchUp::None);
    }

    #[test]
    fn catch_up_rejects_the_rest() {
        for text in ["", "some", "all:", "all:0", "all:1001", "all:-1", "all:+3", "all:x", "all 5", "last:1"] {
            let err = text.parse::<CatchUp>().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid catch-up policy '{text}': expected none, last, all or all:N with 1 <= N <= 1000")
            );
        }
    }

    #[test]
    fn catch_up_round_trips() {
        for policy in [CatchUp::None, CatchUp::Last, CatchUp::All { cap: 7 }] {
            assert_eq!(policy.to_string().parse::<CatchUp>().unwrap(), policy);
            let json = serde_json::to_string(&policy).unwrap();
            assert_eq!(json, format!("\"{policy}\""));
            assert_eq!(serde_json::from_str::<CatchUp>(&json).unwrap(), policy);
        }
        assert!(serde_json::from_str::<CatchUp>("\"all:0\"").is_err());
        assert_eq!(CatchUp::None.cap(), 0);
        assert_eq!(CatchUp::Last.cap(), 1);
        assert_eq!(CatchUp::All { cap: 3 }.cap(), 3);
    }

    #[test]
    fn overlap_parses_displays_and_round_trips() {
        assert_eq!("skip".parse::<Overlap>().unwrap(), Overlap::Skip);
        assert_eq!(" Queue".parse::<Overlap>().unwrap(), Overlap::Queue);
        assert_eq!("ALLOW".parse::<Overlap>().unwrap(), Overlap::Allow);
        assert_eq!(Overlap::default(), Overlap::Skip);
        for policy in [Overlap::Skip, Overlap::Queue, Overlap::Allow] {
            assert_eq!(policy.to_string().parse::<Overlap>().unwrap(), policy);
            let json = serde_json::to_string(&policy).unwrap();
            assert_eq!(serde_json::from_str::<Overlap>(&json).unwrap(), policy);
        }
        let err = "parallel".parse::<Overlap>().unwrap_err();
        assert_eq!(err.to_string(), "invalid overlap policy 'parallel': expected skip, queue or allow");
        assert!(serde_json::from_str::<Overlap>("\"parallel\"").is_err());
    }
}
