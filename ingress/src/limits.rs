//! Limits held across every ingress node: per token, requests per minute, tokens per minute and
//! a spend budget per period; and by dimension (the `rate_limits` setting), requests and tokens
//! per minute per user, per model (all callers together) and per client address. Every limit is
//! a counting key in the same windows (`user:<id>`, `model:<alias>`, `addr:<ip>`; a token's key
//! is its id, which never holds a `:`), so all of them share the gossip and its bound below.
//!
//! Each node counts its own traffic exactly, in one-second buckets over a sliding minute, and
//! every [`GOSSIP_INTERVAL`] publishes what it admitted since its last report on the core NATS
//! subject `axongate.limits.usage`. Every node adds the other nodes' reports into the same
//! windows, so a node's view of a token's usage is its own traffic (exact) plus everyone
//! else's as of at most one gossip interval ago (plus delivery time, sub-millisecond on a LAN).
//!
//! The staleness bound: with `n` nodes, a token can overshoot its limit by at most what the
//! other `n − 1` nodes admit during one interval. At 100 ms that is 1/600 of a minute per node,
//! well inside the 10% the design allows for any limit above a few dozen per minute. No
//! round-trip to a shared store sits on the hot path, and if NATS is unreachable every node
//! still enforces its own share exactly (the limit then holds per node, not per cluster).
//!
//! Spend budgets use the same reports (cost deltas). The baseline at start is read from the
//! Postgres spend view; when Postgres is unreachable it is summed from the request events of
//! the current period still in `AXONGATE_REQUESTS` (`follow::seed_spend_from_stream`), so a
//! restart while Postgres is down does not hand a spent budget back. A period longer than the
//! stream keeps requests (a total budget, or a month with a shorter `requests_max_age_days`)
//! counts only what the stream still holds, and a warning says so.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared::config::{Budget, BudgetPeriod, Rate, RateLimits, Team, UserToken};
use shared::net::Cidr;

use crate::error::IngressError;

pub const GOSSIP_SUBJECT: &str = "axongate.limits.usage";
pub const GOSSIP_INTERVAL: Duration = Duration::from_millis(100);
/// A node with nothing to report sends an empty report every this many intervals (1 s).
pub const HEARTBEAT_EVERY: u32 = 10;
const WINDOW_SECONDS: usize = 60;
/// The most requests one node can report for one token in one second.
pub const MAX_REPORTED_REQUESTS: u64 = 1_000_000;
/// The most tokens one node can report for one token in one second.
pub const MAX_REPORTED_TOKENS: u64 = 10_000_000_000;
/// The most spend one node can report for one token in one second (10 000 currency units).
pub const MAX_REPORTED_SPEND_NANOS: i64 = 10_000 * 1_000_000_000;

/// Sums over a sliding minute of one-second buckets.
#[derive(Debug, Clone)]
struct Window {
    seconds: [i64; WINDOW_SECONDS],
    counts: [u64; WINDOW_SECONDS],
}

impl Default for Window {
    fn default() -> Self {
        Self {
            seconds: [i64::MIN; WINDOW_SECONDS],
            counts: [0; WINDOW_SECONDS],
        }
    }
}

impl Window {
    fn add(&mut self, second: i64, amount: u64) {
        let slot = usize::try_from(second.rem_euclid(WINDOW_SECONDS as i64)).unwrap_or(0);
        if self.seconds[slot] != second {
            if self.seconds[slot] > second {
                return; // older than the window
            }
            self.seconds[slot] = second;
            self.counts[slot] = 0;
        }
        self.counts[slot] += amount;
    }

    fn sum(&self, now: i64) -> u64 {
        self.seconds
            .iter()
            .zip(self.counts.iter())
            .filter(|(second, _)| **second > now - WINDOW_SECONDS as i64 && **second <= now)
            .map(|(_, count)| *count)
            .sum()
    }

    /// Seconds until the oldest counted bucket leaves the window.
    fn seconds_until_relief(&self, now: i64) -> u64 {
        let oldest = self
            .seconds
            .iter()
            .zip(self.counts.iter())
            .filter(|(second, count)| **second > now - WINDOW_SECONDS as i64 && **count > 0)
            .map(|(second, _)| *second)
            .min()
            .unwrap_or(now);
        u64::try_from(oldest + WINDOW_SECONDS as i64 - now)
            .unwrap_or(1)
            .max(1)
    }
}

#[derive(Debug, Default, Clone)]
struct TokenUsage {
    requests: Window,
    tokens: Window,
    /// Spend by period key (see [`period_key`]), nano-units.
    spend: HashMap<String, i64>,
    /// Not yet reported to the other nodes: (second, requests, tokens, spend).
    unreported: Vec<(i64, u64, u64, i64)>,
}

/// One node's report to the others.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UsageReport {
    pub node: String,
    pub entries: Vec<ReportEntry>,
    /// When the reporting node took it (Unix milliseconds): everything it admitted before then
    /// is in this report or an earlier one. Shown as `ingress_limit_report_taken_at_ms{node}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReportEntry {
    pub token_id: String,
    pub second: i64,
    pub requests: u64,
    pub tokens: u64,
    pub spend_nanos: i64,
}

pub struct Limiter {
    node: String,
    usage: Mutex<HashMap<String, TokenUsage>>,
    /// When idle counting keys were last dropped (see [`Limiter::take_report`]).
    last_prune: Mutex<i64>,
    /// The newest `taken_at_ms` merged from each other node (at most [`MAX_TRACKED_NODES`]).
    report_times: Mutex<HashMap<String, i64>>,
}

/// Nodes whose report times are kept and shown; a name past it (or longer than 64 bytes, or
/// not a plain id) is not, so a rogue publisher cannot grow the metrics without bound.
const MAX_TRACKED_NODES: usize = 64;

/// How often keys whose minute is empty are dropped: per-address keys come and go.
const PRUNE_EVERY_SECS: i64 = 10;

/// How the client's address is found: the connection's, unless it comes from a trusted proxy,
/// which names the client in `header`.
#[derive(Debug, Clone)]
pub struct ClientAddress {
    pub trusted: Vec<Cidr>,
    pub header: http::HeaderName,
}

impl ClientAddress {
    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|block| block.contains(ip))
    }

    /// The client's address: the peer's; or, when the peer is a trusted proxy, the right-most
    /// address in the header (over every instance of it) that is not itself a trusted proxy. A
    /// header value that is not an address list is ignored (the peer counts).
    #[must_use]
    pub fn resolve(&self, peer: Option<IpAddr>, headers: &http::HeaderMap) -> Option<IpAddr> {
        let peer = peer?;
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        // From the right: each trusted hop vouches for the one before it; the first untrusted
        // one is the client, and what it wrote further left does not matter. A hop that is not
        // an address before any untrusted one leaves the peer as the client.
        let values: Vec<&http::HeaderValue> = headers.get_all(&self.header).iter().collect();
        for value in values.into_iter().rev() {
            let Ok(text) = value.to_str() else {
                return Some(peer);
            };
            for hop in text
                .rsplit(',')
                .map(str::trim)
                .filter(|hop| !hop.is_empty())
            {
                match parse_hop(hop) {
                    Some(ip) if self.is_trusted(ip) => {}
                    Some(ip) => return Some(ip),
                    None => return Some(peer),
                }
            }
        }
        Some(peer)
    }
}

/// One `X-Forwarded-For` hop: an address, possibly with a port (`1.2.3.4:5678`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Ok(socket) = hop.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    None
}

/// The counting key of a client address: an IPv4 address, or an IPv6 address's /64 (one
/// subscriber's usual allocation, so rotating through it does not escape the limit).
#[must_use]
pub fn address_key(ip: IpAddr) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    };
    match ip {
        IpAddr::V4(v4) => format!("addr:{v4}"),
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & (u128::MAX << 64);
            format!("addr:{}/64", std::net::Ipv6Addr::from(network))
        }
    }
}

fn now_ms() -> Option<i64> {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).ok()
}

/// One limit by dimension that applies to a request: a rate, a spend budget, or both, counted
/// under one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The counting key (`user:<id>`, `team:<id>`, `model:<alias>`, `addr:<ip>`).
    pub key: String,
    pub rate: Rate,
    /// A spend budget shared by every token counted under the key (a user's, a team's).
    pub budget: Option<Budget>,
    /// Whose limit it is, for the 429: "user u1", "model gpt-4.1 (all callers)", ….
    pub label: String,
}

/// Who a request is charged to, beyond its token: the owner (and their budget) and the team.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    pub user_id: &'a str,
    pub user_budget: Option<&'a Budget>,
    pub team: Option<&'a Team>,
}

impl<'a> Owner<'a> {
    /// An owner with no budget of their own and no team.
    #[must_use]
    pub fn user(user_id: &'a str) -> Self {
        Self {
            user_id,
            user_budget: None,
            team: None,
        }
    }
}

/// The limits by dimension that apply to a request of `owner` for the model `alias` from
/// `address`: the user's (the `rate_limits` setting's and their own budget), the team's (its
/// rpm, tpm and budget), the model's and the address's.
#[must_use]
pub fn subjects(
    limits: &RateLimits,
    owner: Owner<'_>,
    alias: &str,
    address: Option<IpAddr>,
) -> Vec<Subject> {
    let mut subjects = Vec::new();
    let user_id = owner.user_id;
    let user_rate = limits
        .users
        .get(user_id)
        .or(limits.per_user.as_ref())
        .copied()
        .unwrap_or_default();
    if !user_rate.is_empty() || owner.user_budget.is_some() {
        subjects.push(Subject {
            key: format!("user:{user_id}"),
            rate: user_rate,
            budget: owner.user_budget.cloned(),
            label: format!("user {user_id}"),
        });
    }
    if let Some(team) = owner.team {
        let rate = Rate {
            rpm: team.rpm,
            tpm: team.tpm,
        };
        if !rate.is_empty() || team.budget.is_some() {
            subjects.push(Subject {
                key: format!("team:{}", team.id),
                rate,
                budget: team.budget.clone(),
                label: format!("team {}", team.name),
            });
        }
    }
    if let Some(rate) = limits.models.get(alias)
        && !rate.is_empty()
    {
        subjects.push(Subject {
            key: format!("model:{alias}"),
            rate: *rate,
            budget: None,
            label: format!("model {alias} (all callers together)"),
        });
    }
    if let (Some(rate), Some(address)) = (limits.per_address.as_ref(), address)
        && !rate.is_empty()
    {
        subjects.push(Subject {
            key: address_key(address),
            rate: *rate,
            budget: None,
            label: "this client address".into(),
        });
    }
    subjects
}

/// The key of the budget period `at` falls in.
#[must_use]
pub fn period_key(period: BudgetPeriod, at: time::OffsetDateTime) -> String {
    match period {
        BudgetPeriod::Daily => format!("d{}", at.date()),
        BudgetPeriod::Weekly => {
            let (year, week, _) = at.date().to_iso_week_date();
            format!("w{year}-{week}")
        }
        BudgetPeriod::Monthly => format!("m{}-{:02}", at.year(), u8::from(at.month())),
        BudgetPeriod::Total => "total".into(),
    }
}

/// When the budget period `at` falls in began (`None` for a total budget, which has no start).
#[must_use]
pub fn period_start(
    period: BudgetPeriod,
    at: time::OffsetDateTime,
) -> Option<time::OffsetDateTime> {
    let midnight = at.date().midnight().assume_utc();
    match period {
        BudgetPeriod::Daily => Some(midnight),
        BudgetPeriod::Weekly => {
            Some(midnight - time::Duration::days(i64::from(at.weekday().number_days_from_monday())))
        }
        BudgetPeriod::Monthly => Some(midnight - time::Duration::days(i64::from(at.day() - 1))),
        BudgetPeriod::Total => None,
    }
}

fn seconds_to_next_period(period: BudgetPeriod, at: time::OffsetDateTime) -> u64 {
    let day_left =
        86_400 - u64::from(at.time().as_hms().0) * 3600 - u64::from(at.time().as_hms().1) * 60;
    match period {
        BudgetPeriod::Daily => day_left,
        BudgetPeriod::Weekly => {
            day_left + 86_400 * u64::from(6 - at.weekday().number_days_from_monday())
        }
        BudgetPeriod::Monthly => {
            day_left + 86_400 * u64::from(at.month().length(at.year()) - at.day())
        }
        BudgetPeriod::Total => 0,
    }
}

impl Limiter {
    #[must_use]
    pub fn new(node: impl Into<String>) -> Self {
        Self {
            node: node.into(),
            usage: Mutex::new(HashMap::new()),
            last_prune: Mutex::new(0),
            report_times: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one request for `token` or says which limit stops it. An admitted request is
    /// counted at once.
    ///
    /// # Errors
    /// `RateLimited` or `BudgetExceeded`, with the seconds to wait.
    pub fn admit(&self, token: &UserToken, now: time::OffsetDateTime) -> Result<(), IngressError> {
        self.admit_with(token, &[], now)
    }

    /// Admits one request for `token` under its own limits and every limit by dimension in
    /// `subjects`, or says which one stops it (the first that is full, the token's first). An
    /// admitted request is counted at once under every key; a refused one under none.
    ///
    /// # Errors
    /// `RateLimited` (naming whose limit) or `BudgetExceeded`, with the seconds to wait.
    pub fn admit_with(
        &self,
        token: &UserToken,
        subjects: &[Subject],
        now: time::OffsetDateTime,
    ) -> Result<(), IngressError> {
        let second = now.unix_timestamp();
        let mut usage = self
            .usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let token_rate = Rate {
            rpm: token.rpm,
            tpm: token.tpm,
        };
        let token_label = "this API key".to_owned();
        let checks = std::iter::once((&token.id, &token_rate, &token_label)).chain(
            subjects
                .iter()
                .map(|subject| (&subject.key, &subject.rate, &subject.label)),
        );
        let idle = TokenUsage::default();
        for (key, rate, label) in checks {
            let entry = usage.get(key).unwrap_or(&idle);
            if let Some(rpm) = rate.rpm
                && entry.requests.sum(second) >= u64::from(rpm)
            {
                return Err(IngressError::RateLimited {
                    what: format!("{rpm} requests per minute for {label}"),
                    retry_after_secs: entry.requests.seconds_until_relief(second),
                });
            }
            if let Some(tpm) = rate.tpm
                && entry.tokens.sum(second) >= u64::from(tpm)
            {
                return Err(IngressError::RateLimited {
                    what: format!("{tpm} tokens per minute for {label}"),
                    retry_after_secs: entry.tokens.seconds_until_relief(second),
                });
            }
        }
        let token_label = "this API key".to_owned();
        let budgets = std::iter::once((&token.id, token.budget.as_ref(), &token_label)).chain(
            subjects
                .iter()
                .map(|subject| (&subject.key, subject.budget.as_ref(), &subject.label)),
        );
        for (key, budget, label) in budgets {
            let Some(budget) = budget else { continue };
            let spent = usage
                .get(key)
                .and_then(|entry| entry.spend.get(&period_key(budget.period, now)))
                .copied()
                .unwrap_or(0);
            if spent >= budget.amount.0 {
                return Err(IngressError::BudgetExceeded {
                    whose: label.clone(),
                    period: budget.period.as_str().to_owned(),
                    retry_after_secs: seconds_to_next_period(budget.period, now),
                });
            }
        }
        let entry = usage.entry(token.id.clone()).or_default();
        entry.requests.add(second, 1);
        entry.unreported.push((second, 1, 0, 0));
        for subject in subjects {
            let entry = usage.entry(subject.key.clone()).or_default();
            entry.requests.add(second, 1);
            entry.unreported.push((second, 1, 0, 0));
        }
        Ok(())
    }

    /// Records the tokens of a finished request under the keys of its limits by dimension, and
    /// its cost under those with a budget.
    pub fn record_subjects(
        &self,
        subjects: &[Subject],
        tokens: u64,
        cost_nanos: i64,
        now: time::OffsetDateTime,
    ) {
        if subjects.is_empty() {
            return;
        }
        let second = now.unix_timestamp();
        let mut usage = self
            .usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for subject in subjects {
            let entry = usage.entry(subject.key.clone()).or_default();
            entry.tokens.add(second, tokens);
            let spend = match &subject.budget {
                Some(budget) => {
                    *entry
                        .spend
                        .entry(period_key(budget.period, now))
                        .or_default() += cost_nanos;
                    cost_nanos
                }
                None => 0,
            };
            entry.unreported.push((second, 0, tokens, spend));
        }
    }

    /// Records the tokens and cost of a finished request.
    pub fn record(
        &self,
        token: &UserToken,
        tokens: u64,
        cost_nanos: i64,
        now: time::OffsetDateTime,
    ) {
        let second = now.unix_timestamp();
        let mut usage = self
            .usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = usage.entry(token.id.clone()).or_default();
        entry.tokens.add(second, tokens);
        if let Some(budget) = &token.budget {
            *entry
                .spend
                .entry(period_key(budget.period, now))
                .or_default() += cost_nanos;
        }
        entry.unreported.push((second, 0, tokens, cost_nanos));
    }

    /// Counts a request another node (or an earlier run) finished in the last minute, so that a
    /// node joining the cluster starts with the minute's usage rather than an empty window.
    pub fn seed(&self, token_id: &str, admitted_at: i64, finished_at: i64, tokens: u64) {
        let mut usage = self
            .usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = usage.entry(token_id.to_owned()).or_default();
        entry.requests.add(admitted_at, 1);
        entry.tokens.add(finished_at, tokens);
    }

    /// Sets the spend already recorded for a token's current period (from the spend view).
    pub fn set_baseline(&self, token_id: &str, period_key: String, spent_nanos: i64) {
        let mut usage = self
            .usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = usage.entry(token_id.to_owned()).or_default();
        let current = entry.spend.entry(period_key).or_default();
        *current = (*current).max(spent_nanos);
    }

    /// Adds an audited correction (`spend.adjusted`, negative for a refund) to a token's spend
    /// in the budget period `period_key`. Every node applies the event itself, so it is not
    /// reported to the others.
    pub fn adjust(&self, token_id: &str, period_key: String, nanos: i64) {
        let mut usage = self
            .usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = usage.entry(token_id.to_owned()).or_default();
        *entry.spend.entry(period_key).or_default() += nanos;
    }

    /// Keeps when `node` took its newest report, shown as
    /// `ingress_limit_report_taken_at_ms{node}`: everything that node admitted before then is
    /// counted here.
    fn note_report_time(&self, node: &str, taken_at_ms: i64) {
        let plain = node.len() <= 64
            && node
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"-_.".contains(&byte));
        let Ok(mut times) = self.report_times.lock() else {
            return;
        };
        if !plain || (times.len() >= MAX_TRACKED_NODES && !times.contains_key(node)) {
            return;
        }
        let newest = times.entry(node.to_owned()).or_insert(taken_at_ms);
        *newest = (*newest).max(taken_at_ms);
        #[expect(
            clippy::cast_precision_loss,
            reason = "milliseconds since 1970 fit in 53 bits"
        )]
        let value = *newest as f64;
        metrics::gauge!("ingress_limit_report_taken_at_ms", "node" => node.to_owned()).set(value);
    }

    /// An empty report: nothing admitted since the last one, as of now.
    #[must_use]
    pub fn heartbeat(&self) -> UsageReport {
        UsageReport {
            node: self.node.clone(),
            entries: Vec::new(),
            taken_at_ms: now_ms(),
        }
    }

    /// Takes what this node admitted since its last report. Every [`PRUNE_EVERY_SECS`], keys by
    /// dimension with nothing in their minute and no spend are dropped (a token's key, and a
    /// team's or user's with a budget, hold their spend).
    pub fn take_report(&self) -> Option<UsageReport> {
        let mut usage = self
            .usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Ok(mut last) = self.last_prune.lock()
            && now - *last >= PRUNE_EVERY_SECS
        {
            *last = now;
            usage.retain(|key, entry| {
                !key.contains(':')
                    || !entry.spend.is_empty()
                    || !entry.unreported.is_empty()
                    || entry.requests.sum(now) > 0
                    || entry.tokens.sum(now) > 0
            });
        }
        let mut entries = Vec::new();
        for (token_id, entry) in usage.iter_mut() {
            let mut by_second: HashMap<i64, (u64, u64, i64)> = HashMap::new();
            for (second, requests, tokens, spend) in entry.unreported.drain(..) {
                let slot = by_second.entry(second).or_default();
                slot.0 += requests;
                slot.1 += tokens;
                slot.2 += spend;
            }
            entries.extend(by_second.into_iter().map(
                |(second, (requests, tokens, spend_nanos))| ReportEntry {
                    token_id: token_id.clone(),
                    second,
                    requests,
                    tokens,
                    spend_nanos,
                },
            ));
        }
        (!entries.is_empty()).then(|| UsageReport {
            node: self.node.clone(),
            entries,
            taken_at_ms: now_ms(),
        })
    }

    /// Adds another node's report. Budget periods are matched by the reporting second.
    ///
    /// Reports arrive on a plain NATS subject, so an entry that no node could have sent is
    /// refused and counted (`ingress_limit_reports_refused_total`): negative spend (it would
    /// hand a spent budget back), amounts past [`MAX_REPORTED_REQUESTS`],
    /// [`MAX_REPORTED_TOKENS`] or [`MAX_REPORTED_SPEND_NANOS`] in one second, and seconds
    /// outside the sliding window (older than it, or from the future).
    pub fn merge(&self, report: &UsageReport, budgets: impl Fn(&str) -> Option<BudgetPeriod>) {
        self.merge_at(
            report,
            budgets,
            time::OffsetDateTime::now_utc().unix_timestamp(),
        );
    }

    fn merge_at(
        &self,
        report: &UsageReport,
        budgets: impl Fn(&str) -> Option<BudgetPeriod>,
        now: i64,
    ) {
        if report.node == self.node {
            return;
        }
        if let Some(taken_at_ms) = report.taken_at_ms {
            self.note_report_time(&report.node, taken_at_ms);
        }
        let plausible = |item: &ReportEntry| {
            item.spend_nanos >= 0
                && item.spend_nanos <= MAX_REPORTED_SPEND_NANOS
                && item.requests <= MAX_REPORTED_REQUESTS
                && item.tokens <= MAX_REPORTED_TOKENS
                && item.second > now - WINDOW_SECONDS as i64
                && item.second <= now + 5
        };
        let mut usage = self
            .usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for item in &report.entries {
            if !plausible(item) {
                metrics::counter!("ingress_limit_reports_refused_total").increment(1);
                tracing::warn!(node = %report.node, token = %item.token_id, second = item.second, requests = item.requests, tokens = item.tokens, spend_nanos = item.spend_nanos, "implausible usage report entry refused");
                continue;
            }
            let entry = usage.entry(item.token_id.clone()).or_default();
            entry.requests.add(item.second, item.requests);
            entry.tokens.add(item.second, item.tokens);
            if item.spend_nanos != 0
                && let (Some(period), Ok(at)) = (
                    budgets(&item.token_id),
                    time::OffsetDateTime::from_unix_timestamp(item.second),
                )
            {
                *entry.spend.entry(period_key(period, at)).or_default() += item.spend_nanos;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::token::TokenHash;

    fn token(rpm: Option<u32>) -> UserToken {
        UserToken {
            id: "t".into(),
            name: "t".into(),
            owner_user_id: "u".into(),
            hash: TokenHash("h".into()),
            last_four: "abcd".into(),
            allowed_models: vec![],
            rpm,
            tpm: None,
            budget: None,
            expires_at: None,
            enabled: true,
            team_id: None,
        }
    }

    #[test]
    fn rpm_holds_over_a_sliding_minute() {
        let limiter = Limiter::new("a");
        let token = token(Some(3));
        let start = time::OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        for _ in 0..3 {
            limiter.admit(&token, start).unwrap();
        }
        let error = limiter
            .admit(&token, start + Duration::from_secs(30))
            .unwrap_err();
        assert!(
            matches!(
                error,
                IngressError::RateLimited {
                    retry_after_secs: 30,
                    ..
                }
            ),
            "{error:?}"
        );
        limiter
            .admit(&token, start + Duration::from_secs(60))
            .unwrap();
    }

    #[test]
    fn other_nodes_count_through_reports() {
        let (a, b) = (Limiter::new("a"), Limiter::new("b"));
        let token = token(Some(4));
        let now = time::OffsetDateTime::from_unix_timestamp(2_000_000).unwrap();
        a.admit(&token, now).unwrap();
        a.admit(&token, now).unwrap();
        a.admit(&token, now).unwrap();
        let report = a.take_report().unwrap();
        assert!(a.take_report().is_none(), "a report is taken once");
        b.merge_at(&report, |_| None, now.unix_timestamp());
        b.admit(&token, now).unwrap();
        assert!(
            b.admit(&token, now).is_err(),
            "b sees a's three and its own one"
        );
        a.merge_at(&report, |_| None, now.unix_timestamp()); // a ignores its own report
        a.admit(&token, now).unwrap();
        assert!(a.admit(&token, now).is_err());
    }

    #[test]
    fn implausible_reports_are_refused() {
        let limiter = Limiter::new("a");
        let mut token = token(Some(1));
        token.budget = Some(shared::config::Budget {
            amount: shared::money::Nanos(10),
            currency: "USD".into(),
            period: BudgetPeriod::Total,
        });
        let now = time::OffsetDateTime::from_unix_timestamp(3_000_000).unwrap();
        let second = now.unix_timestamp();
        limiter.admit(&token, now).unwrap();
        limiter.record(&token, 0, 10, now);
        let entry = |requests: u64, spend_nanos: i64, second: i64| ReportEntry {
            token_id: "t".into(),
            second,
            requests,
            tokens: 0,
            spend_nanos,
        };
        let rogue = UsageReport {
            node: "rogue".into(),
            taken_at_ms: None,
            entries: vec![
                entry(0, -1_000_000, second),
                entry(0, i64::MAX, second),
                entry(0, 0, second - 3_600),
                entry(0, 0, second + 3_600),
                entry(u64::MAX, 0, second),
            ],
        };
        limiter.merge_at(&rogue, |_| Some(BudgetPeriod::Total), second);
        let error = limiter.admit(&token, now).unwrap_err();
        assert!(
            matches!(error, IngressError::RateLimited { .. }),
            "{error:?}"
        );
        token.rpm = None;
        let error = limiter.admit(&token, now).unwrap_err();
        assert!(
            matches!(error, IngressError::BudgetExceeded { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn limits_by_dimension_count_every_key_and_refuse_on_any() {
        let (a, b) = (Limiter::new("a"), Limiter::new("b"));
        let mut first = token(None);
        first.owner_user_id = "u1".into();
        let mut second = first.clone();
        second.id = "t2".into();
        let limits = RateLimits {
            per_user: Some(Rate {
                rpm: Some(3),
                tpm: None,
            }),
            ..RateLimits::default()
        };
        let now = time::OffsetDateTime::from_unix_timestamp(4_000_000).unwrap();
        let subjects = subjects(&limits, Owner::user("u1"), "m", None);
        assert_eq!(subjects.len(), 1);
        // Two tokens of one user on two nodes share the user's three requests.
        a.admit_with(&first, &subjects, now).unwrap();
        a.admit_with(&first, &subjects, now).unwrap();
        b.merge_at(&a.take_report().unwrap(), |_| None, now.unix_timestamp());
        b.admit_with(&second, &subjects, now).unwrap();
        let error = b.admit_with(&second, &subjects, now).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("3 requests per minute for user u1"),
            "{error}"
        );
        // A refused request counts nowhere: the token itself has had one request on b.
        let report = b.take_report().unwrap();
        let t2: u64 = report
            .entries
            .iter()
            .filter(|entry| entry.token_id == "t2")
            .map(|entry| entry.requests)
            .sum();
        assert_eq!(t2, 1);
        // A user with their own limit is not held by per_user; a model's limit counts everyone.
        let limits = RateLimits {
            users: [(
                "u1".to_owned(),
                Rate {
                    rpm: Some(100),
                    tpm: None,
                },
            )]
            .into(),
            models: [(
                "m".to_owned(),
                Rate {
                    rpm: None,
                    tpm: Some(10),
                },
            )]
            .into(),
            ..limits
        };
        let subjects = super::subjects(&limits, Owner::user("u1"), "m", None);
        b.admit_with(&second, &subjects, now).unwrap();
        let model_only: Vec<Subject> = subjects
            .iter()
            .filter(|subject| subject.key == "model:m")
            .cloned()
            .collect();
        b.record_subjects(&model_only, 10, 0, now);
        let error = b.admit_with(&first, &subjects, now).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("10 tokens per minute for model m (all callers together)"),
            "{error}"
        );
    }

    #[test]
    fn a_team_budget_is_shared_by_its_tokens_across_nodes() {
        let (a, b) = (Limiter::new("a"), Limiter::new("b"));
        let team = Team {
            id: "eng".into(),
            name: "Engineering".into(),
            members: Vec::new(),
            allowed_models: Vec::new(),
            budget: Some(shared::config::Budget {
                amount: shared::money::Nanos(100),
                currency: "USD".into(),
                period: BudgetPeriod::Daily,
            }),
            rpm: None,
            tpm: None,
        };
        let (mut first, mut second) = (token(None), token(None));
        first.id = "t1".into();
        second.id = "t2".into();
        let owner = Owner {
            user_id: "u1",
            user_budget: None,
            team: Some(&team),
        };
        let subjects = subjects(&RateLimits::default(), owner, "m", None);
        assert_eq!(subjects.len(), 1, "{subjects:?}");
        let now = time::OffsetDateTime::from_unix_timestamp(5_000_000).unwrap();
        a.admit_with(&first, &subjects, now).unwrap();
        a.record(&first, 0, 60, now);
        a.record_subjects(&subjects, 0, 60, now);
        b.admit_with(&second, &subjects, now).unwrap();
        b.record(&second, 0, 50, now);
        b.record_subjects(&subjects, 0, 50, now);
        let periods = |key: &str| (key == "team:eng").then_some(BudgetPeriod::Daily);
        let (from_a, from_b) = (a.take_report().unwrap(), b.take_report().unwrap());
        a.merge_at(&from_b, periods, now.unix_timestamp());
        b.merge_at(&from_a, periods, now.unix_timestamp());
        for (node, token) in [(&a, &first), (&b, &second)] {
            let error = node.admit_with(token, &subjects, now).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains("budget exhausted for team Engineering (daily budget)"),
                "{error}"
            );
        }
        let tomorrow = now + Duration::from_secs(86_400);
        a.admit_with(&first, &subjects, tomorrow).unwrap();
    }

    #[test]
    fn the_client_address_comes_from_a_trusted_proxy_only() {
        let resolver = ClientAddress {
            trusted: vec![Cidr::parse("10.0.0.0/8").unwrap()],
            header: http::HeaderName::from_static("x-forwarded-for"),
        };
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "198.51.100.7, 203.0.113.9, 10.1.1.1".parse().unwrap(),
        );
        let from = |ip: &str, headers: &http::HeaderMap| {
            resolver.resolve(Some(ip.parse().unwrap()), headers)
        };
        assert_eq!(
            from("10.2.2.2", &headers),
            Some("203.0.113.9".parse().unwrap()),
            "right-most untrusted hop"
        );
        assert_eq!(
            from("192.0.2.1", &headers),
            Some("192.0.2.1".parse().unwrap()),
            "an untrusted peer's header is ignored"
        );
        headers.insert("x-forwarded-for", "junk, 198.51.100.9".parse().unwrap());
        assert_eq!(
            from("10.2.2.2", &headers),
            Some("198.51.100.9".parse().unwrap()),
            "what the client wrote left of its own hop does not move it"
        );
        headers.insert("x-forwarded-for", "not an address".parse().unwrap());
        assert_eq!(
            from("10.2.2.2", &headers),
            Some("10.2.2.2".parse().unwrap())
        );
        headers.insert("x-forwarded-for", "[2001:db8::1]:443".parse().unwrap());
        assert_eq!(
            from("10.2.2.2", &headers),
            Some("2001:db8::1".parse().unwrap())
        );
        // An IPv6 client counts by its /64.
        assert_eq!(
            address_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            address_key("2001:db8:1:2:bbbb::9".parse().unwrap())
        );
        assert_ne!(
            address_key("2001:db8:1:2::1".parse().unwrap()),
            address_key("2001:db8:1:3::1".parse().unwrap())
        );
        assert_eq!(
            address_key("::ffff:192.0.2.1".parse().unwrap()),
            "addr:192.0.2.1"
        );
    }

    #[test]
    fn budget_periods() {
        let at = time::macros::datetime!(2026-11-26 06:00 UTC);
        assert_eq!(period_key(BudgetPeriod::Daily, at), "d2026-11-26");
        assert_eq!(period_key(BudgetPeriod::Monthly, at), "m2026-11");
        assert_eq!(seconds_to_next_period(BudgetPeriod::Daily, at), 18 * 3600);
        assert_eq!(
            period_start(BudgetPeriod::Weekly, at),
            Some(time::macros::datetime!(2026-11-23 00:00 UTC))
        );
        assert_eq!(
            period_start(BudgetPeriod::Monthly, at),
            Some(time::macros::datetime!(2026-11-01 00:00 UTC))
        );
        assert_eq!(period_start(BudgetPeriod::Total, at), None);
    }
}
