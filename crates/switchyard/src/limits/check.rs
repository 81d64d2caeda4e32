//! What a backend checks and counts: plain counters with a limit, an amount and a lifetime,
//! already resolved to the current window. The same list goes to the in-process backend and
//! to the Redis script, so both enforce exactly the same rules.

/// Money in counters: whole nano-dollars (1e-9 USD). Exact for every price in the table and
/// for budgets up to millions of dollars inside Redis's Lua numbers.
pub type Nanos = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    /// Spend in a budget window: `spent + reserved + amount` must stay within the limit.
    Budget,
    /// Requests in this minute.
    Requests,
    /// Tokens in this minute (reserved as the estimate, settled to the actual count).
    Tokens,
    /// Requests in flight now.
    Parallel,
}

impl CheckKind {
    pub fn code(self) -> &'static str {
        match self {
            Self::Budget => "b",
            Self::Requests => "q",
            Self::Tokens => "t",
            Self::Parallel => "p",
        }
    }
}

/// One counter to check and, if every check passes, to increase.
#[derive(Debug, Clone)]
pub struct Check {
    pub kind: CheckKind,
    /// The counter's name, window included (`b:global:day:1764720000`).
    pub key: String,
    pub limit: i64,
    pub amount: i64,
    /// Seconds the counter must live (until its window ends, plus a margin).
    pub ttl: i64,
}

impl Check {
    /// Whether `used` (and, for budgets, `reserved`) leaves room for this check's amount.
    /// A budget already reached refuses even a request that reserves nothing (its price is
    /// unknown), as LiteLLM refuses once spend reached the limit.
    pub fn fits(&self, used: i64, reserved: i64) -> bool {
        let taken = used + reserved;
        match self.kind {
            CheckKind::Budget => taken < self.limit && taken + self.amount <= self.limit,
            CheckKind::Tokens => taken < self.limit && taken + self.amount <= self.limit,
            CheckKind::Requests | CheckKind::Parallel => taken < self.limit,
        }
    }
}

/// What every check's counter held, when all passed (after the increase) or at the first
/// that did not (before it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Admitted { used: Vec<(i64, i64)> },
    Refused { index: usize, used: i64, reserved: i64 },
}

/// How a reservation ends: what was actually spent and used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Settlement {
    pub cost: Nanos,
    pub tokens: i64,
}
