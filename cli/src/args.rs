//! The command line: flags and subcommands (clap derive).

use std::path::PathBuf;

use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Parser, Subcommand};

const GLOBAL: &str = "Global options";

/// The highest `--max-body-mib`: 1 TiB, far past any memory slcli could use.
pub const MAX_BODY_MIB: u64 = 1 << 20;

const AFTER_HELP: &str = "\
The server URL comes from --url, else SLCLI_URL, else the file written by `slcli connect`.

Exit status: 0 on success; 1 on any error (usage errors included), a file `slcli deploy` \
could not deploy, or a failed `slcli test` case; 2 when `slcli resolve` finds the invocation \
still pending.";

/// Command-line client for SL, the self-hosted serverless platform for Lua functions.
#[derive(Debug, Parser)]
#[command(name = "slcli", version, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    /// Server URL, e.g. http://127.0.0.1:8080 (overrides SLCLI_URL and the saved URL)
    #[arg(long, global = true, value_name = "URL", help_heading = GLOBAL)]
    pub url: Option<String>,

    /// API token, sent as `Authorization: Bearer TOKEN` (overrides SLCLI_TOKEN and the saved token;
    /// with `connect`, saved beside the URL)
    #[arg(long, global = true, value_name = "TOKEN", help_heading = GLOBAL)]
    pub token: Option<String>,

    /// Print the server's response body (JSON; raw DEL and C1 controls as \u escapes) instead of
    /// human-readable output
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,

    /// Config file that holds the server URL (env SLCLI_CONFIG) [default: ~/.slcli]
    #[arg(long, global = true, value_name = "PATH", help_heading = GLOBAL)]
    pub config: Option<PathBuf>,

    /// Give up on a request after this many seconds, 0 for never (connecting alone gives up after 5 s)
    /// [default: 5 for ping and connect, 600 for the others]
    #[arg(long, global = true, value_name = "SECS", help_heading = GLOBAL)]
    pub timeout_secs: Option<u64>,

    /// Read at most this many MiB of any answer of the server; a bigger one is an error
    /// (env SLCLI_MAX_BODY_MIB) [default: 256]
    #[arg(
        long,
        global = true,
        value_name = "MIB",
        value_parser = clap::value_parser!(u64).range(1..=MAX_BODY_MIB),
        help_heading = GLOBAL
    )]
    pub max_body_mib: Option<u64>,

    #[command(subcommand)]
    pub command: Command,
}

/// The default `--timeout-secs` of `ping` and `connect`: a server answers
/// `GET /ping` at once, so one that has not answered in this long is not
/// going to (it accepted the connection but hangs, or is not an HTTP server).
pub const PING_TIMEOUT_SECS: u64 = 5;

/// The default `--timeout-secs` of the other commands: long enough for a
/// blocking run at the server's longest timeout (300 s) and a big answer.
pub const TIMEOUT_SECS: u64 = 600;

impl Cli {
    /// The seconds a request may take (0: no limit): `--timeout-secs`, or
    /// the command's default.
    pub fn timeout_secs(&self) -> u64 {
        self.timeout_secs.unwrap_or(match self.command {
            Command::Ping | Command::Connect { .. } => PING_TIMEOUT_SECS,
            _ => TIMEOUT_SECS,
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that URL answers GET /ping, then save it in the config file
    Connect {
        /// Server URL, e.g. http://127.0.0.1:8080
        url: String,
    },

    /// Check that the server answers, and show the round-trip time
    Ping,

    /// List the actions with their version, size and limits ("[]" when there are none)
    List,

    /// Show an action's metadata and Lua source
    Get {
        /// Action name
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        name: String,

        /// Write only the source, its exact bytes, to FILE ("-" for standard output, when it is not a terminal)
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },

    /// Upload a new action from a Lua file
    Create(CreateArgs),

    /// Replace an action's code and/or limits (makes a new version)
    Update(UpdateArgs),

    /// Delete an action
    Delete {
        /// Action name
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        name: String,
    },

    /// Run an action: with -b wait for its result, otherwise print an invocation ID at once
    Run(RunArgs),

    /// Print the result of an asynchronous invocation (exit status 2 while it is still pending)
    Resolve(ResolveArgs),

    /// List recent invocations, newest first
    Invocations(InvocationsArgs),

    /// List the plugins the server loaded, with their versions
    Plugins,

    /// Add, list or delete the HTTP routes that map requests to actions
    #[command(subcommand, long_about = ROUTE_ABOUT)]
    Route(RouteCommand),

    /// Create, inspect, change and delete topics; publish to them and read their messages
    #[command(subcommand, long_about = TOPIC_ABOUT)]
    Topic(TopicCommand),

    /// Create, inspect, reset and delete the subscriptions that deliver topics to actions
    #[command(subcommand, long_about = SUB_ABOUT)]
    Sub(SubCommand),

    /// List, show, redrive or purge a subscription's dead letters
    #[command(subcommand, long_about = DLQ_ABOUT)]
    Dlq(DlqCommand),

    /// Create, inspect and delete the schedules that run actions at set times
    #[command(subcommand, long_about = SCHEDULE_ABOUT)]
    Schedule(ScheduleCommand),

    /// Deploy a directory of Lua files (and its sl.toml) as actions, routes, topics, subscriptions and
    /// schedules
    #[command(long_about = crate::deploy::LONG_ABOUT)]
    Deploy(DirArgs),

    /// Deploy a directory, then watch it and deploy every change (until Ctrl-C)
    #[command(long_about = crate::dev::LONG_ABOUT)]
    Dev(DirArgs),

    /// Run the Lua tests (*_test.lua) of a directory on the server
    #[command(long_about = crate::testrun::LONG_ABOUT)]
    Test(TestArgs),
}

const ROUTE_ABOUT: &str = "\
Add, list or delete HTTP routes.

A route maps requests on slserver's routes listener (the `Routes { host, port }` block of its \
config, or `slserver --routes-listen HOST:PORT`) to an action: a method (or * for any), an \
optional host (absent = any host) and a path such as /users/:id. The routes of an app \
directory are best kept in its sl.toml (see `slcli help deploy`).

    slcli route add GET /users/:id users.get --host example.com
    slcli route list
    slcli route delete GET /users/:id --host example.com

Quote * for the shell: slcli route add '*' /hook hook.";

#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// Add a route: requests for METHOD PATH (on HOST) run ACTION
    ///
    /// Prints `route added GET example.com/users/:id -> users.get`. Fails if an equivalent route
    /// exists (409 conflict: delete it first), the action does not exist (404), or the method,
    /// path or host is invalid (400).
    Add {
        /// HTTP method, e.g. GET or POST; * for any method
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        method: String,
        /// Path, e.g. /users/:id
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        path: String,
        /// Action to run
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        action: String,
        /// Only for requests to this host (default: any host)
        #[arg(long, value_name = "HOST")]
        host: Option<String>,
    },

    /// List the routes: METHOD, HOST (* for any), PATH and ACTION ("[]" when there are none)
    List,

    /// Delete the route for METHOD PATH (on HOST)
    ///
    /// Prints `route deleted GET /users/:id`; fails with 404 if there is no such route.
    Delete {
        /// HTTP method of the route, or *
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        method: String,
        /// Path of the route, as added
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        path: String,
        /// Host of the route (default: the route for any host)
        #[arg(long, value_name = "HOST")]
        host: Option<String>,
    },
}

const TOPIC_ABOUT: &str = "\
Create, inspect, change and delete topics; publish messages to them and read their logs.

A topic is a durable log of JSON messages, split into partitions (fixed when it is created). A \
message's key picks its partition, so the messages of one key stay in order; messages without \
a key are spread over the partitions. Retention deletes a partition's oldest messages by age \
(--retention-secs) and by the topic's total size (--retention-bytes); offsets are never reused. \
Subscriptions (`slcli sub`) deliver a topic's messages to an action. The topics of an app \
directory are best kept in its sl.toml (see `slcli help deploy`).

    slcli topic create orders --partitions 8 --retention-secs 604800
    slcli topic publish orders '{\"id\": 17, \"total\": 9.5}' --key customer-42
    slcli topic read orders --partition 3 --from 0 --limit 20
    slcli topic set orders --retention-bytes 100000000
    slcli topic delete orders

Names are 1 to 128 letters, digits, '-', '_' or '.' (not '.' or '..').";

const SUB_ABOUT: &str = "\
Create, inspect, reset and delete subscriptions.

A subscription delivers the messages of a topic to an action, in batches: the action's \
`main(batch)` gets `{subscription=, topic=, partition=, messages={{partition=, offset=, key=, \
payload=, attempts=, published=}, ...}}`. Returning acks the batch; raising an error retries it \
after a backoff (doubling from --backoff-ms up to --backoff-max-ms), up to --max-retries times, \
after which its messages become dead letters (`slcli dlq`). Each partition has a cursor: the \
offset of the next message to take; `slcli sub get` shows the cursors and the backlog.

    slcli sub create mailer --topic orders --action mail.send --batch-size 20 --from beginning
    slcli sub get mailer
    slcli sub reset mailer --to 2026-12-08T09:00:00Z
    slcli sub delete mailer

A position (--from, --to) is `beginning` (the oldest retained message), `end` (only messages \
published from now on), an offset (the same in every partition), or an RFC 3339 time such as \
2026-12-08T09:00:00Z or 2026-12-08T10:00:00+01:00 (in each partition, the first message \
published at or after it).";

const DLQ_ABOUT: &str = "\
List, show, redrive or purge the dead letters of a subscription: the messages whose delivery \
failed more than the subscription's max retries, kept with their attempts, last error and logs.

    slcli dlq list mailer
    slcli dlq show mailer 3:1042
    slcli dlq redrive mailer 3:1042
    slcli dlq purge mailer

A dead letter is named by its place in the topic, PARTITION:OFFSET, as `dlq list` shows it. \
Redriving moves dead letters back to delivery with their attempts reset; purging deletes them.";

const SCHEDULE_ABOUT: &str = "\
Create, inspect and delete schedules.

A schedule runs an action asynchronously at the times its spec gives. Each firing is an \
invocation of the action (`slcli invocations ACTION` lists them) whose args are the schedule's \
--args with `schedule = {name=, scheduled=, scheduled_at=, caught_up=}` added (`scheduled`: \
the firing's time in Unix ms). Every server sharing the store looks at the schedules twice a \
second, and each firing runs once across them.

    slcli schedule create nightly --action report --spec '0 9 * * *' --tz Europe/London \\
        --args '{\"kind\": \"daily\"}'
    slcli schedule create tick --action poll --spec '@every 30s' --overlap queue
    slcli schedule list
    slcli schedule get nightly
    slcli schedule delete nightly

A spec is a 5-field cron expression (minute, hour, day of month, month, day of week; e.g. \
`*/15 9-17 * * MON-FRI`, with croner's L, W and # extensions), a nickname (@hourly, @daily, \
@weekly, @monthly, @yearly), or `@every DURATION` with a DURATION such as 30s, 5m, 1h30m, 2d or \
1500ms (at least 1s), which fires one interval after the schedule is created, then every \
interval. A cron spec follows the wall clock of --tz, an IANA time zone such as Europe/London \
(default UTC), daylight saving time included: a local time that occurs twice fires once, and \
one the clock jumps over fires when it jumps. Quote a spec for the shell.

--overlap says what a firing does while the run of the schedule's last firing is still \
queued or running: skip it (the default), queue it until that run ends, or allow it to run \
alongside. --catch-up says which of the firings missed while no server was running are run \
late: none (the default), the last one, all (the 10 most recent at most) or all:N (the N most \
recent, N up to 1000). --jitter (or --jitter-ms) delays each firing by an offset below it, the \
same on every server, to spread out schedules that share a time.

A schedule cannot be changed: delete it and create it again (its count of firings and last \
firing start over, and an @every schedule counts from its new creation). The schedules of an \
app directory are best kept in its sl.toml (see `slcli help deploy`).

Names are 1 to 128 letters, digits, '-', '_' or '.' (not '.' or '..').";

/// A duration such as `30s`, `5m` or `1h30m` (the grammar of `@every`), in
/// milliseconds, for `--jitter`.
fn duration_ms(text: &str) -> Result<u64, String> {
    sl_schedule::parse_duration(text).map_err(|e| e.to_string())
}

/// A retention bound of `slcli topic set`: a number, or `none` for no bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// No bound (`none`).
    None,
    /// This many seconds or bytes.
    Value(u64),
}

impl Bound {
    /// The bound as an option: `None` for no bound.
    pub fn get(self) -> Option<u64> {
        match self {
            Bound::None => None,
            Bound::Value(n) => Some(n),
        }
    }
}

impl std::str::FromStr for Bound {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.eq_ignore_ascii_case("none") {
            return Ok(Bound::None);
        }
        text.parse().map(Bound::Value).map_err(|_| format!("'{text}' is neither a whole number nor 'none'"))
    }
}

/// The place of a dead letter: `PARTITION:OFFSET`, e.g. `3:1042`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// The partition of the topic.
    pub partition: u32,
    /// The message's offset in that partition.
    pub offset: i64,
}

impl std::str::FromStr for Place {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("'{text}' is not PARTITION:OFFSET, e.g. 3:1042 (as `slcli dlq list` shows)");
        let (p, o) = text.split_once(':').ok_or_else(bad)?;
        let partition = p.trim().parse().map_err(|_| bad())?;
        let offset: i64 = o.trim().parse().map_err(|_| bad())?;
        if offset < 0 {
            return Err(bad());
        }
        Ok(Place { partition, offset })
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.partition, self.offset)
    }
}

/// `slcli topic ...`.
#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic
    ///
    /// Prints `topic created orders (4 partitions, kept for any age, any size)`. Fails if a topic of
    /// that name exists (409 conflict), or the name, partitions or retention are invalid (400).
    Create {
        /// Topic name: 1 to 128 letters, digits, '-', '_' or '.' (not '.' or '..')
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        name: String,
        /// Number of partitions, 1 to 256; fixed once the topic exists [server default: 4]
        #[arg(short, long, value_name = "N")]
        partitions: Option<u32>,
        /// Delete messages older than this many seconds (at least 1) [default: kept for any age]
        #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(1..))]
        retention_secs: Option<u64>,
        /// Delete the oldest messages while the topic's payloads and keys hold more than this many bytes
        /// [default: no bound]
        #[arg(long, value_name = "B", value_parser = clap::value_parser!(u64).range(1..))]
        retention_bytes: Option<u64>,
    },

    /// List the topics: partitions, retained messages and bytes, retention ("[]" when there are none)
    List,

    /// Show a topic: its settings, what it holds, and each partition's first and next offsets
    Get {
        /// Topic name
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        name: String,
    },

    /// Change a topic's retention (what is not given stays as it is)
    ///
    /// Prints `topic updated orders (kept 3600 s, any size)`. `none` removes a bound. The number of
    /// partitions cannot change.
    #[command(group(clap::ArgGroup::new("retention").required(true).multiple(true)))]
    Set {
        /// Topic name
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        name: String,
        /// Delete messages older than this many seconds (at least 1), or `none` to keep them for any age
        #[arg(long, value_name = "S|none", group = "retention")]
        retention_secs: Option<Bound>,
        /// Keep at most this many bytes of payloads and keys (at least 1), or `none` for no bound
        #[arg(long, value_name = "B|none", group = "retention")]
        retention_bytes: Option<Bound>,
    },

    /// Delete a topic and its messages
    ///
    /// Prints `topic deleted orders`. Fails with 409 while subscriptions read it (delete them first),
    /// and with 404 if there is no such topic.
    Delete {
        /// Topic name
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        name: String,
    },

    /// Publish one message (any JSON value) to a topic
    ///
    /// Prints `published to orders partition 2 offset 17` once the message is stored. With
    /// --idempotency-key, publishing the same key again (while the first message is retained) stores
    /// nothing and prints where the first one is, and a publish whose answer is lost is retried.
    Publish(PublishArgs),

    /// Read a partition's retained messages, oldest first
    ///
    /// Prints PARTITION, OFFSET, KEY, PUBLISHED and PAYLOAD (compact JSON) per message ("[]" when there
    /// are none). To read on, pass the last offset shown plus one as --from.
    Read {
        /// Topic name
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        name: String,
        /// The partition to read [default: 0]
        #[arg(short, long, value_name = "P")]
        partition: Option<u32>,
        /// The first offset to read (an earlier one reads from the oldest retained) [default: 0]
        #[arg(short, long, value_name = "OFFSET")]
        from: Option<i64>,
        /// At most N messages (1 to 1000) [server default: 100]
        #[arg(short = 'n', long, value_name = "N")]
        limit: Option<u64>,
    },
}

/// `slcli topic publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Topic name
    #[arg(value_parser = NonEmptyStringValueParser::new())]
    pub name: String,

    /// The message, any JSON value, e.g. '{"id": 17}' or '"text"' (a string needs its JSON quotes)
    #[arg(value_name = "PAYLOAD_JSON", required_unless_present = "data_file", conflicts_with = "data_file")]
    pub payload: Option<String>,

    /// Read the message from FILE ("-" for standard input)
    #[arg(short, long, value_name = "FILE")]
    pub data_file: Option<PathBuf>,

    /// The message's key: the messages of one key go to one partition, in order
    #[arg(long, value_name = "K")]
    pub key: Option<String>,

    /// Publish with this Idempotency-Key (1 to 255 printable ASCII characters): the same key again
    /// stores nothing new and answers where the first message is
    #[arg(short = 'k', long, value_name = "K")]
    pub idempotency_key: Option<String>,
}

/// `slcli sub ...`.
#[derive(Debug, Subcommand)]
pub enum SubCommand {
    /// Create a subscription: deliver TOPIC's messages to ACTION
    ///
    /// Prints `subscription created mailer (orders -> mail.send, from end)`. Fails if a subscription of
    /// that name exists (409 conflict), the topic or action does not exist (404), or a name or
    /// setting is invalid (400).
    Create(SubCreateArgs),

    /// List the subscriptions: topic, action, backlog and dead letters ("[]" when there are none)
    List,

    /// Show a subscription: its settings, backlog and dead letters, and each partition's cursor,
    /// pending messages, backlog and owner
    Get {
        /// Subscription name
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        name: String,
    },

    /// Delete a subscription (its cursors, pending messages and dead letters go with it)
    ///
    /// Prints `subscription deleted mailer`; fails with 404 if there is no such subscription.
    Delete {
        /// Subscription name
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        name: String,
    },

    /// Move a subscription's cursors: replay from an earlier position, or skip ahead
    ///
    /// Prints `subscription mailer reset to beginning` and the new cursor of each partition. Pending
    /// retries are dropped; dead letters stay.
    Reset {
        /// Subscription name
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        name: String,
        /// Where to: beginning, end, an OFFSET (in every partition), or an RFC 3339 TIME such as
        /// 2026-12-08T09:00:00Z
        #[arg(long, value_name = "POSITION")]
        to: crate::position::Position,
    },
}

/// `slcli sub create`.
#[derive(Debug, Args)]
pub struct SubCreateArgs {
    /// Subscription name: 1 to 128 letters, digits, '-', '_' or '.' (not '.' or '..')
    #[arg(value_parser = NonEmptyStringValueParser::new())]
    pub name: String,

    /// The topic to deliver
    #[arg(long, value_name = "TOPIC", value_parser = NonEmptyStringValueParser::new())]
    pub topic: String,

    /// The action each batch runs
    #[arg(long, value_name = "ACTION", value_parser = NonEmptyStringValueParser::new())]
    pub action: String,

    /// At most N messages a batch, 1 to 1000 [server default: 10]
    #[arg(long, value_name = "N")]
    pub batch_size: Option<u32>,

    /// Wait up to MS milliseconds (0 to 60000) for a partial batch to fill [server default: 0]
    #[arg(long, value_name = "MS")]
    pub max_wait_ms: Option<i64>,

    /// Deliveries of a failing message after its first before it becomes a dead letter, 0 to 100
    /// [server default: 3]
    #[arg(long, value_name = "N")]
    pub max_retries: Option<u32>,

    /// The first retry's delay in milliseconds, doubling with each retry [server default: 1000]
    #[arg(long, value_name = "MS")]
    pub backoff_ms: Option<i64>,

    /// The longest delay between retries, in milliseconds [server default: 300000]
    #[arg(long, value_name = "MS")]
    pub backoff_max_ms: Option<i64>,

    /// Where to start: beginning, end, an OFFSET (in every partition), or an RFC 3339 TIME such as
    /// 2026-12-08T09:00:00Z [server default: end]
    #[arg(long, value_name = "POSITION")]
    pub from: Option<crate::position::Position>,
}

/// `slcli dlq ...`.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List a subscription's dead letters, oldest death first: place (PARTITION:OFFSET), key,
    /// attempts, when it died, and its error ("[]" when there are none)
    List {
        /// Subscription name
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        sub: String,
        /// At most N dead letters (1 to 1000) [server default: 100]
        #[arg(short = 'n', long, value_name = "N")]
        limit: Option<u64>,
    },

    /// Show one dead letter: its payload, attempts, last error and the logs of its last delivery
    ///
    /// It is looked up among the subscription's 1000 oldest dead letters (the server has no request
    /// for one). With --json, prints the dead letter's JSON object as the server sent it.
    Show {
        /// Subscription name
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        sub: String,
        /// The dead letter's place, PARTITION:OFFSET, as `dlq list` shows it
        #[arg(value_name = "PARTITION:OFFSET")]
        place: Place,
    },

    /// Move dead letters back to delivery, their attempts reset: all of them, or the one at
    /// PARTITION:OFFSET
    ///
    /// Prints `redriven 3 dead letters of mailer`; fails with 404 if there is no such subscription
    /// (or no dead letter at PARTITION:OFFSET).
    Redrive {
        /// Subscription name
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        sub: String,
        /// Only the dead letter at this place
        #[arg(value_name = "PARTITION:OFFSET")]
        place: Option<Place>,
    },

    /// Delete dead letters: all of them, or the one at PARTITION:OFFSET
    ///
    /// Prints `purged 3 dead letters of mailer`; fails with 404 if there is no such subscription (or no
    /// dead letter at PARTITION:OFFSET).
    Purge {
        /// Subscription name
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        sub: String,
        /// Only the dead letter at this place
        #[arg(value_name = "PARTITION:OFFSET")]
        place: Option<Place>,
    },
}

/// `slcli schedule ...`.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Create a schedule: run ACTION at the times SPEC gives
    ///
    /// Prints `schedule created nightly (0 9 * * * in Europe/London -> report, next
    /// 2026-12-09T09:00:00.000Z)`, the next firing in UTC. Fails if a schedule of that name exists (409
    /// conflict), the action does not exist (404), or the name, spec, time zone or jitter is invalid
    /// (400, saying what is wrong).
    Create(ScheduleCreateArgs),

    /// List the schedules: spec, time zone, action, firings so far and the next one, in UTC ("[]" when
    /// there are none)
    List,

    /// Show a schedule: its settings and args, its firings so far, the last one and its invocation,
    /// and the next one
    Get {
        /// Schedule name
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        name: String,
    },

    /// Delete a schedule (runs of its firings already queued still run)
    ///
    /// Prints `schedule deleted nightly`; fails with 404 if there is no such schedule.
    Delete {
        /// Schedule name
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        name: String,
    },
}

/// `slcli schedule create`.
#[derive(Debug, Args)]
pub struct ScheduleCreateArgs {
    /// Schedule name: 1 to 128 letters, digits, '-', '_' or '.' (not '.' or '..')
    #[arg(value_parser = NonEmptyStringValueParser::new())]
    pub name: String,

    /// The action each firing runs (asynchronously)
    #[arg(long, value_name = "ACTION", value_parser = NonEmptyStringValueParser::new())]
    pub action: String,

    /// When: a 5-field cron expression such as '0 9 * * MON-FRI', a nickname such as @daily, or
    /// '@every DURATION' such as '@every 30s' (at least 1s)
    #[arg(long, value_name = "SPEC")]
    pub spec: String,

    /// The IANA time zone the cron spec follows, e.g. Europe/London (@every ignores it) [server
    /// default: UTC]
    #[arg(long, visible_alias = "time-zone", value_name = "ZONE")]
    pub tz: Option<String>,

    /// The action's args, an inline JSON object such as '{"kind": "daily"}' [default: {}]
    #[arg(long, value_name = "JSON", conflicts_with = "args_file")]
    pub args: Option<String>,

    /// Read the action's args, a JSON object, from FILE ("-" for standard input)
    #[arg(long, value_name = "FILE")]
    pub args_file: Option<PathBuf>,

    /// While the last firing's run is queued or running, a due firing is skipped, queued until it
    /// ends, or allowed to run alongside [server default: skip]
    #[arg(long, value_name = "skip|queue|allow")]
    pub overlap: Option<sl_schedule::Overlap>,

    /// The firings missed while no server ran that are run late: none, the last one, all (the 10 most
    /// recent) or all:N (the N most recent, 1 to 1000) [server default: none]
    #[arg(long, value_name = "none|last|all|all:N")]
    pub catch_up: Option<sl_schedule::CatchUp>,

    /// Delay each firing by an offset below DURATION (such as 30s, 5m or 1h30m; at most 1d) to spread
    /// out schedules that share a time [default: none]
    #[arg(long, value_name = "DURATION", value_parser = duration_ms, conflicts_with = "jitter_ms")]
    pub jitter: Option<u64>,

    /// --jitter in milliseconds (0 to 86400000)
    #[arg(long, value_name = "MS")]
    pub jitter_ms: Option<u64>,
}

#[derive(Debug, Args)]
pub struct DirArgs {
    /// The app directory: *.lua files (users/get.lua is the action users.get) and an optional sl.toml
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The directory holding the *_test.lua files (searched at any depth)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Run only the cases whose label (`FILE: FUNCTION`) contains SUBSTRING
    #[arg(long, value_name = "SUBSTRING")]
    pub filter: Option<String>,
}

/// Per-action limits; 0 or absent means the server default.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Memory limit of the action's Lua state, in kilobytes (KiB); 0 = server default
    #[arg(short, long, value_name = "KB")]
    pub maxmem: Option<u64>,

    /// Wall-clock limit of one invocation, in milliseconds; 0 = server default
    #[arg(short, long, value_name = "MS")]
    pub timeout: Option<u64>,

    /// VM instruction budget of one invocation; 0 = server default
    #[arg(short, long, value_name = "N")]
    pub instructions: Option<u64>,
}

impl LimitArgs {
    pub fn is_empty(&self) -> bool {
        self.maxmem.is_none() && self.timeout.is_none() && self.instructions.is_none()
    }
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Action name: 1 to 128 letters, digits, '-', '_' or '.' (not '.' or '..')
    #[arg(value_parser = NonEmptyStringValueParser::new())]
    pub name: String,

    /// Lua source file defining a global function `main(args)`
    #[arg(short, long, value_name = "FILE")]
    pub file: PathBuf,

    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Action name
    #[arg(value_parser = NonEmptyStringValueParser::new())]
    pub name: String,

    /// New Lua source file (give at least one of -f, -m, -t, -i)
    #[arg(short, long, value_name = "FILE")]
    pub file: Option<PathBuf>,

    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Action name
    #[arg(value_parser = NonEmptyStringValueParser::new())]
    pub name: String,

    /// Block: wait for the result and print it (a string result is printed without quotes)
    #[arg(short, long)]
    pub block: bool,

    /// Read the action's args, a JSON object, from FILE
    #[arg(short, long, value_name = "FILE", conflicts_with = "data")]
    pub payload: Option<PathBuf>,

    /// The action's args as an inline JSON object, e.g. '{"name": "World"}'
    #[arg(short, long, value_name = "JSON")]
    pub data: Option<String>,

    /// Send the asynchronous run with this Idempotency-Key: the same command run again gets the same
    /// invocation ID and the action runs once; a run whose answer is lost is retried
    #[arg(short = 'k', long, value_name = "KEY", conflicts_with = "block")]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// Invocation ID, as printed by `slcli run NAME`
    #[arg(value_parser = NonEmptyStringValueParser::new())]
    pub id: String,

    /// Wait up to SECS seconds for a pending invocation to finish (server default 1, at most 60)
    #[arg(short, long, value_name = "SECS")]
    pub wait: Option<u64>,
}

#[derive(Debug, Args)]
pub struct InvocationsArgs {
    /// Only the invocations of this action
    #[arg(value_parser = NonEmptyStringValueParser::new())]
    pub name: Option<String>,

    /// At most N records (server default 50, at most 1000)
    #[arg(short = 'n', long, value_name = "N")]
    pub limit: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn payload_and_data_conflict() {
        let r = Cli::try_parse_from(["slcli", "run", "x", "-p", "a.json", "-d", "{}"]);
        assert!(r.is_err());
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = Cli::try_parse_from(["slcli", "list", "--json", "--url", "http://h:1"]).unwrap();
        assert!(cli.json);
        assert_eq!(cli.url.as_deref(), Some("http://h:1"));
        let cli = Cli::try_parse_from(["slcli", "--timeout-secs", "3", "run", "x", "-b"]).unwrap();
        assert_eq!(cli.timeout_secs(), 3);
        assert!(matches!(cli.command, Command::Run(RunArgs { block: true, .. })));
    }

    #[test]
    fn ping_and_connect_give_up_sooner_by_default() {
        let timeout = |args: &[&str]| Cli::try_parse_from(args).unwrap().timeout_secs();
        assert_eq!(timeout(&["slcli", "ping"]), PING_TIMEOUT_SECS);
        assert_eq!(timeout(&["slcli", "connect", "http://h:1"]), PING_TIMEOUT_SECS);
        assert_eq!(timeout(&["slcli", "list"]), TIMEOUT_SECS);
        assert_eq!(timeout(&["slcli", "run", "x", "-b"]), TIMEOUT_SECS);
        assert_eq!(timeout(&["slcli", "ping", "--timeout-secs", "60"]), 60);
        assert_eq!(timeout(&["slcli", "--timeout-secs", "0", "connect", "http://h:1"]), 0);
    }

    #[test]
    fn the_body_bound_is_at_least_one_mib() {
        let cli = Cli::try_parse_from(["slcli", "list", "--max-body-mib", "1"]).unwrap();
        assert_eq!(cli.max_body_mib, Some(1));
        for bad in ["0", "-1", "x", "1048577"] {
            assert!(Cli::try_parse_from(["slcli", "list", "--max-body-mib", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn topic_set_needs_a_bound_and_takes_none() {
        assert!(Cli::try_parse_from(["slcli", "topic", "set", "t"]).is_err());
        let cli = Cli::try_parse_from(["slcli", "topic", "set", "t", "--retention-secs", "none"]).unwrap();
        let Command::Topic(TopicCommand::Set { retention_secs, retention_bytes, .. }) = cli.command else { panic!() };
        assert_eq!((retention_secs, retention_bytes), (Some(Bound::None), None));
        let cli = Cli::try_parse_from(["slcli", "topic", "set", "t", "--retention-bytes", "5"]).unwrap();
        let Command::Topic(TopicCommand::Set { retention_bytes, .. }) = cli.command else { panic!() };
        assert_eq!(retention_bytes.and_then(Bound::get), Some(5));
        assert!(Cli::try_parse_from(["slcli", "topic", "set", "t", "--retention-secs", "-1"]).is_err());
        assert!(Cli::try_parse_from(["slcli", "topic", "create", "t", "--retention-secs", "0"]).is_err());
    }

    #[test]
    fn publish_takes_a_payload_or_a_file() {
        assert!(Cli::try_parse_from(["slcli", "topic", "publish", "t"]).is_err());
        assert!(Cli::try_parse_from(["slcli", "topic", "publish", "t", "{}", "-d", "m.json"]).is_err());
        let cli = Cli::try_parse_from(["slcli", "topic", "publish", "t", "-d", "-", "--key", "k", "-k", "i"]).unwrap();
        let Command::Topic(TopicCommand::Publish(p)) = cli.command else { panic!() };
        assert_eq!((p.payload, p.key.as_deref(), p.idempotency_key.as_deref()), (None, Some("k"), Some("i")));
    }

    #[test]
    fn places_and_positions() {
        assert_eq!("3:1042".parse(), Ok(Place { partition: 3, offset: 1042 }));
        for bad in ["3", "a:1", "1:-1", ":", "1:2:3"] {
            assert!(bad.parse::<Place>().is_err(), "{bad}");
        }
        let cli = Cli::try_parse_from(["slcli", "sub", "reset", "s", "--to", "2026-12-08T09:00:00Z"]).unwrap();
        let Command::Sub(SubCommand::Reset { to, .. }) = cli.command else { panic!() };
        assert_eq!(to, crate::position::Position::Time(1_796_720_400_000));
        let r = Cli::try_parse_from(["slcli", "sub", "create", "s", "--topic", "t", "--action", "a", "--from", "x"]);
        assert!(r.unwrap_err().to_string().contains("is not a valid position"));
        assert!(Cli::try_parse_from(["slcli", "sub", "create", "s", "--topic", "t"]).is_err(), "--action is required");
        assert!(Cli::try_parse_from(["slcli", "dlq", "show", "s", "x"]).is_err());
    }

    #[test]
    fn schedule_create_checks_its_policies_and_jitter() {
        use sl_schedule::{CatchUp, Overlap};
        let parse = |extra: &[&str]| {
            let mut args = vec!["slcli", "schedule", "create", "s", "--action", "a", "--spec", "@daily"];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args).map(|cli| match cli.command {
                Command::Schedule(ScheduleCommand::Create(c)) => c,
                other => panic!("{other:?}"),
            })
        };
        let c = parse(&[]).unwrap();
        assert_eq!((c.tz, c.overlap, c.catch_up, c.jitter, c.jitter_ms), (None, None, None, None, None));
        let c =
            parse(&["--time-zone", "Europe/London", "--overlap", "QUEUE", "--catch-up", "all:5", "--jitter", "1m30s"])
                .unwrap();
        assert_eq!(c.tz.as_deref(), Some("Europe/London"));
        assert_eq!(
            (c.overlap, c.catch_up, c.jitter),
            (Some(Overlap::Queue), Some(CatchUp::All { cap: 5 }), Some(90_000))
        );
        assert_eq!(parse(&["--jitter-ms", "250"]).unwrap().jitter_ms, Some(250));
        for (extra, message) in [
            (&["--overlap", "sometimes"][..], "invalid overlap policy 'sometimes': expected skip, queue or allow"),
            (&["--catch-up", "all:0"], "invalid catch-up policy 'all:0'"),
            (&["--jitter", "5x"], "invalid duration '5x'"),
            (&["--jitter", "1s", "--jitter-ms", "5"], "cannot be used with"),
            (&["--args", "{}", "--args-file", "a.json"], "cannot be used with"),
        ] {
            let e = parse(extra).unwrap_err().to_string();
            assert!(e.contains(message), "{extra:?}: {e}");
        }
        assert!(
            Cli::try_parse_from(["slcli", "schedule", "create", "s", "--action", "a"]).is_err(),
            "--spec is required"
        );
    }

    #[test]
    fn limits_are_absent_unless_given() {
        let cli = Cli::try_parse_from(["slcli", "create", "x", "-f", "x.lua", "-t", "200"]).unwrap();
        let Command::Create(c) = cli.command else { panic!() };
        assert_eq!((c.limits.maxmem, c.limits.timeout, c.limits.instructions), (None, Some(200), None));
    }
}
