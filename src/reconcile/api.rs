//! Every Personalize call of the reconciler: one global rate limit, throttling retried with backoff,
//! errors classified by what the reconciler does about them.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_personalize::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use tokio::time::Instant;

use super::guard::{LeaseGuard, Unguarded, is_mutating};

/// Which calls go first when the rate is short: creates and updates are never starved by polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Describes and listings.
    Read,
    /// Creates, updates, starts, stops, deletes.
    Write,
}

impl Priority {
    /// By the operation's name (`CreateCampaign` writes, `DescribeCampaign` reads).
    pub fn of(op: &str) -> Self {
        if is_mutating(op) { Self::Write } else { Self::Read }
    }
}

/// A slot given by [`RateLimiter::acquire`]: says which rate it was given under, so the throttled
/// answers to calls sent at an old rate lower it once, not once each.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    epoch: u64,
}

#[derive(Debug)]
struct LimiterState {
    /// Calls per second at `since`; it grows linearly from there up to the ceiling.
    rate: f64,
    since: Instant,
    /// The earliest instant the next call may go.
    next: Option<Instant>,
    /// Raised at every decrease.
    epoch: u64,
    /// Writes waiting for a slot: reads let them go first.
    writes_waiting: usize,
}

/// The process's Personalize call rate: adaptive (AIMD, as the AWS SDK's adaptive retry mode), with
/// `calls_per_second` as the ceiling. A throttled call halves the rate; then it climbs back by a
/// twentieth of the ceiling per second. Replicas sharing one account quota each back off when
/// throttled and so settle near a fair share of it without knowing of each other. Writes go before
/// reads. Share one `Arc` between the reconcilers of a process.
#[derive(Debug)]
pub struct RateLimiter {
    ceiling: f64,
    floor: f64,
    state: std::sync::Mutex<LimiterState>,
}

/// How much of the ceiling the rate regains per second after a decrease.
const RECOVERY_PER_SEC: f64 = 0.05;
/// The lowest rate, as a share of the ceiling (a throttled storm never stops the process).
const FLOOR_SHARE: f64 = 0.02;

/// Removes a waiting write from the count when its `acquire` ends or is dropped.
struct WriteWaiting<'a>(&'a RateLimiter);

impl Drop for WriteWaiting<'_> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.writes_waiting = s.writes_waiting.saturating_sub(1);
    }
}

impl RateLimiter {
    /// At most `rate` calls per second (must be positive; the settings check it).
    pub fn new(rate: f64) -> Self {
        let rate = if rate.is_finite() && rate > 0.0 { rate } else { 1.0 };
        Self {
            ceiling: rate,
            floor: rate * FLOOR_SHARE,
            state: std::sync::Mutex::new(LimiterState {
                rate,
                since: Instant::now(),
                next: None,
                epoch: 0,
                writes_waiting: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LimiterState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn rate_at(&self, s: &LimiterState, now: Instant) -> f64 {
        let grown = s.rate + self.ceiling * RECOVERY_PER_SEC * now.duration_since(s.since).as_secs_f64();
        grown.min(self.ceiling)
    }

    /// The current rate (calls per second).
    pub fn rate(&self) -> f64 {
        let s = self.lock();
        self.rate_at(&s, Instant::now())
    }

    /// The slot at `now`, or when to look again.
    ///
    /// The next slot is one interval after the slot just given, not after `now`: a waiter wakes a
    /// little after its slot (timer granularity, a busy runtime), and spacing from the wake-up
    /// would add that delay to every call (2 ms a call is 4 % of a 20 calls/s quota). A slot missed
    /// by more than one interval (nobody was calling) is not made up for: at most two calls go
    /// back to back, which a quota's token bucket (AWS's and the built-in Personalize's hold a
    /// second's worth) absorbs.
    fn try_acquire(&self, priority: Priority, now: Instant) -> Result<Ticket, Instant> {
        let mut s = self.lock();
        let slot = s.next.map_or(now, |n| n.max(now));
        let interval = Duration::from_secs_f64(1.0 / self.rate_at(&s, now));
        if priority == Priority::Read && s.writes_waiting > 0 {
            // A write is waiting: look again one slot later.
            Err(slot + interval)
        } else if slot <= now {
            let missed_since = now.checked_sub(interval).unwrap_or(now);
            let given = s.next.map_or(now, |n| n.max(missed_since));
            s.next = Some(given + interval);
            Ok(Ticket { epoch: s.epoch })
        } else {
            Err(slot)
        }
    }

    /// Waits for the next free slot, writes before reads. Dropping the future gives nothing up:
    /// cancellation is safe.
    pub async fn acquire(&self, priority: Priority) -> Ticket {
        let _waiting = (priority == Priority::Write).then(|| {
            self.lock().writes_waiting += 1;
            WriteWaiting(self)
        });
        loop {
            match self.try_acquire(priority, Instant::now()) {
                Ok(ticket) => return ticket,
                Err(at) => tokio::time::sleep_until(at).await,
            }
        }
    }

    /// A call given `ticket` was throttled: halve the rate, once per rate.
    pub fn throttled(&self, ticket: Ticket) {
        self.throttled_at(ticket, Instant::now());
    }

    fn throttled_at(&self, ticket: Ticket, now: Instant) {
        let mut s = self.lock();
        if ticket.epoch != s.epoch {
            return;
        }
        s.rate = (self.rate_at(&s, now) / 2.0).max(self.floor);
        s.since = now;
        s.epoch += 1;
        // Calls already spaced at the old rate wait for the new one.
        let interval = Duration::from_secs_f64(1.0 / s.rate);
        s.next = Some(s.next.map_or(now, |n| n.max(now)) + interval);
        tracing::debug!(rate = s.rate, "throttled: lowering the Personalize call rate");
    }
}

/// What the reconciler does about a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// `ResourceNotFoundException`: the resource does not exist.
    NotFound,
    /// `ResourceAlreadyExistsException`: describe and adopt.
    AlreadyExists,
    /// `ResourceInUseException`: a parent is not ready or work is in progress; try again later.
    InUse,
    /// Not sent: this replica no longer holds the group's lease ([`super::guard`]). The pass stops;
    /// the new owner carries on.
    LeaseLost,
    /// `LimitExceededException`: a quota is full; wait and try again.
    Limit,
    /// Throttled beyond the retries, or the network failed; try again later.
    Transient,
    /// Personalize refused the request (`InvalidInputException`, …): the resource fails with it.
    Rejected,
}

/// A Personalize call that failed, with the operation, the resource and Personalize's own words.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{op} {target}: {code}: {message}")]
pub struct ApiError {
    pub op: &'static str,
    pub target: String,
    pub code: String,
    pub message: String,
    pub class: ErrorClass,
}

fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException" | "TooManyRequestsException" | "Throttling" | "RequestLimitExceeded"
    )
}

fn classify(code: &str) -> ErrorClass {
    match code {
        "ResourceNotFoundException" => ErrorClass::NotFound,
        "ResourceAlreadyExistsException" => ErrorClass::AlreadyExists,
        "ResourceInUseException" => ErrorClass::InUse,
        "LimitExceededException" => ErrorClass::Limit,
        c if is_throttling(c) => ErrorClass::Transient,
        c if c.starts_with("InternalServer") || c == "ServiceUnavailable" || c.is_empty() => {
            ErrorClass::Transient
        }
        _ => ErrorClass::Rejected,
    }
}

/// Whether sending `op` again does the work again. A second CreateSolutionVersion trains a second
/// version (a paid training): versions are named by a random id, and Personalize documents no refusal
/// of a repeated `name`. Every other create is refused as a duplicate (`ResourceAlreadyExists`:
/// names are unique per account), and updates, tags, starts and stops set a state a repeat leaves
/// as it is.
fn repeats_work(op: &str) -> bool {
    op == "CreateSolutionVersion"
}

/// How throttled calls are retried.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
    pub retries: u32,
}

/// The Personalize client behind the global rate limit, counting calls.
#[derive(Debug, Clone)]
pub struct Api {
    pub(crate) client: aws_sdk_personalize::Client,
    limiter: Arc<RateLimiter>,
    backoff: Backoff,
    calls: Arc<AtomicU64>,
    /// Asked before every call that changes something.
    guard: Arc<dyn LeaseGuard>,
}

impl Api {
    pub fn new(client: aws_sdk_personalize::Client, limiter: Arc<RateLimiter>, backoff: Backoff) -> Self {
        Self {
            client: without_sdk_retries(&client),
            limiter,
            backoff,
            calls: Arc::new(AtomicU64::new(0)),
            guard: Arc::new(Unguarded),
        }
    }

    /// The same client, limiter and call count, with `guard` checked before every mutating call.
    pub fn guarded(&self, guard: Arc<dyn LeaseGuard>) -> Self {
        Self {
            guard,
            ..self.clone()
        }
    }

    /// Calls made so far (including retries).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Runs `call` through the rate limit; throttling and transport failures are retried with
    /// backoff, everything else is returned classified.
    pub async fn call<T, E, Fut>(
        &self,
        op: &'static str,
        target: &str,
        call: impl Fn() -> Fut,
    ) -> Result<T, ApiError>
    where
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut delay = self.backoff.min;
        let mut attempt = 0;
        loop {
            let ticket = self.limiter.acquire(Priority::of(op)).await;
            // After the wait for a slot, which may have outlasted the lease.
            if is_mutating(op)
                && let Err(lost) = self.guard.check()
            {
                return Err(ApiError {
                    op,
                    target: target.to_string(),
                    code: "LeaseLost".into(),
                    message: lost.to_string(),
                    class: ErrorClass::LeaseLost,
                });
            }
            self.calls.fetch_add(1, Ordering::Relaxed);
            let error = match call().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let code = error.code().unwrap_or_default().to_string();
            let class = match &error {
                SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
                    ErrorClass::Transient
                }
                _ => classify(&code),
            };
            if is_throttling(&code) {
                self.limiter.throttled(ticket);
            }
            let message = error
                .message()
                .map(str::to_string)
                .unwrap_or_else(|| crate::aws::error_text(&error));
            // A network failure or a server error may come after Personalize did the work: a call
            // that would do it twice is not sent again here. The pass ends with it "later", and the
            // next one lists what exists before deciding again. A throttled call was not done.
            let retry_here = is_throttling(&code) || !repeats_work(op);
            if class == ErrorClass::Transient && retry_here && attempt < self.backoff.retries {
                attempt += 1;
                tracing::debug!(op, target, code, attempt, "throttled or unreachable; retrying");
                // Jitter keeps many groups that were throttled together from retrying together.
                let jitter = rand::random_range(0.5..1.0);
                tokio::time::sleep(delay.mul_f64(jitter)).await;
                delay = (delay * 2).min(self.backoff.max);
                continue;
            }
            return Err(ApiError {
                op,
                target: target.to_string(),
                code: if code.is_empty() {
                    unnamed_code(&error)
                } else {
                    code
                },
                message,
                class,
            });
        }
    }
}

/// What a failure without an error code is called: the HTTP status when an answer came (an HTML
/// error page from an overloaded endpoint or a proxy, which the SDK cannot parse), else a network
/// failure. Either is transient ([`classify`] of an empty code).
fn unnamed_code<E>(error: &SdkError<E, HttpResponse>) -> String {
    match error.raw_response() {
        Some(answer) => format!("HTTP {}", answer.status().as_u16()),
        None => "NetworkError".into(),
    }
}

/// `client` with the SDK's own retries off. [`Api::call`] retries throttling and network failures
/// itself, each attempt through the rate limiter; SDK retries inside one call would bypass the limiter
/// and multiply the attempts (SDK attempts × reconciler retries) against a throttling Personalize.
fn without_sdk_retries(client: &aws_sdk_personalize::Client) -> aws_sdk_personalize::Client {
    aws_sdk_personalize::Client::from_conf(
        client
            .config()
            .to_builder()
            .retry_config(aws_sdk_personalize::config::retry::RetryConfig::disabled())
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_does_not_retry_behind_the_rate_limiter() {
        use aws_sdk_personalize::config::{BehaviorVersion, Region, retry::RetryConfig};
        let conf = aws_sdk_personalize::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .retry_config(RetryConfig::standard().with_max_attempts(5))
            .build();
        let api = Api::new(
            aws_sdk_personalize::Client::from_conf(conf),
            Arc::new(RateLimiter::new(10.0)),
            Backoff {
                min: Duration::from_millis(1),
                max: Duration::from_millis(2),
                retries: 3,
            },
        );
        let retry = api.client.config().retry_config().expect("a retry config");
        assert_eq!(retry.max_attempts(), 1);
        assert_eq!(
            api.client.config().region().map(ToString::to_string).as_deref(),
            Some("eu-west-1"),
            "the rest of the configuration is kept"
        );
    }

    fn api(retries: u32) -> Api {
        use aws_sdk_personalize::config::{BehaviorVersion, Region};
        let conf = aws_sdk_personalize::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .build();
        Api::new(
            aws_sdk_personalize::Client::from_conf(conf),
            Arc::new(RateLimiter::new(1000.0)),
            Backoff {
                min: Duration::from_millis(1),
                max: Duration::from_millis(2),
                retries,
            },
        )
    }

    /// Calls `op` through `api`, every attempt answered by `answer`; how many attempts were sent.
    async fn attempts(
        api: &Api,
        op: &'static str,
        answer: fn() -> SdkError<
            aws_sdk_personalize::operation::create_solution_version::CreateSolutionVersionError,
            HttpResponse,
        >,
    ) -> (u32, ErrorClass) {
        let sent = AtomicU64::new(0);
        let result: Result<(), _> = api
            .call(op, "arn:aws:personalize:eu-west-1:1:solution/s", || {
                sent.fetch_add(1, Ordering::Relaxed);
                std::future::ready(Err(answer()))
            })
            .await;
        let class = result.err().map(|e| e.class).expect("every attempt fails");
        (sent.load(Ordering::Relaxed) as u32, class)
    }

    #[tokio::test]
    async fn a_create_that_would_train_twice_is_not_resent_after_a_network_failure() {
        let api = api(3);
        let timed_out = || SdkError::timeout_error("no answer within the attempt timeout");
        let cut = || {
            SdkError::response_error(
                "connection closed before the answer was read",
                HttpResponse::new(500.try_into().expect("status"), "".into()),
            )
        };
        // The request may have reached Personalize: once only, left to the next pass's listing.
        for answer in [timed_out as fn() -> _, cut] {
            assert_eq!(
                attempts(&api, "CreateSolutionVersion", answer).await,
                (1, ErrorClass::Transient)
            );
        }
        // A create refused as a duplicate, or an update, is safe to send again.
        assert_eq!(
            attempts(&api, "CreateCampaign", timed_out).await,
            (4, ErrorClass::Transient)
        );
        // A throttled call was not done: sent again, whatever the operation.
        let throttled = || {
            SdkError::service_error(
                aws_sdk_personalize::operation::create_solution_version::CreateSolutionVersionError::generic(
                    aws_sdk_personalize::error::ErrorMetadata::builder()
                        .code("ThrottlingException")
                        .message("Rate exceeded")
                        .build(),
                ),
                HttpResponse::new(400.try_into().expect("status"), "".into()),
            )
        };
        assert_eq!(
            attempts(&api, "CreateSolutionVersion", throttled).await,
            (4, ErrorClass::Transient)
        );
    }

    #[test]
    fn error_codes_are_classified() {
        assert_eq!(classify("ResourceNotFoundException"), ErrorClass::NotFound);
        assert_eq!(
            classify("ResourceAlreadyExistsException"),
            ErrorClass::AlreadyExists
        );
        assert_eq!(classify("LimitExceededException"), ErrorClass::Limit);
        assert_eq!(classify("ThrottlingException"), ErrorClass::Transient);
        assert_eq!(classify("InvalidInputException"), ErrorClass::Rejected);
        assert_eq!(classify("ResourceInUseException"), ErrorClass::InUse);
    }

    #[tokio::test]
    async fn the_rate_limiter_spaces_calls() {
        let limiter = RateLimiter::new(50.0);
        let start = Instant::now();
        for _ in 0..6 {
            limiter.acquire(Priority::Read).await;
        }
        // Five intervals of 20 ms after the first free slot, at least (a lower bound only: a loaded
        // machine may be slower, never faster).
        assert!(
            start.elapsed() >= Duration::from_millis(100),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn operations_are_read_or_write() {
        for op in ["DescribeCampaign", "ListSolutionVersions", "GetSolutionMetrics"] {
            assert_eq!(Priority::of(op), Priority::Read, "{op}");
        }
        for op in [
            "CreateCampaign",
            "UpdateCampaign",
            "StopSolutionVersionCreation",
            "DeleteFilter",
        ] {
            assert_eq!(Priority::of(op), Priority::Write, "{op}");
        }
    }

    // Instants are given, not waited for: nothing here is timed.
    #[test]
    fn aimd_lowers_the_rate_under_throttling_and_recovers_to_the_ceiling() {
        let limiter = RateLimiter::new(20.0);
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        let rate = |now: Instant| limiter.rate_at(&limiter.lock(), now);
        assert!((rate(t0) - 20.0).abs() < 1e-9);
        let first = limiter.try_acquire(Priority::Read, at(0.0)).expect("free slot");
        let second = limiter.try_acquire(Priority::Read, at(0.05)).expect("next slot");
        limiter.throttled_at(first, at(0.1));
        assert!((rate(at(0.1)) - 10.0).abs() < 1e-6);
        // A second throttled answer to a call sent at the old rate does not cut again.
        limiter.throttled_at(second, at(0.1));
        assert!((rate(at(0.1)) - 10.0).abs() < 1e-6);
        // The next slot is spaced at the new rate.
        assert_eq!(limiter.try_acquire(Priority::Read, at(0.15)).err(), Some(at(0.2)));
        // A call sent at the new rate and throttled does cut.
        let third = limiter.try_acquire(Priority::Read, at(0.2)).expect("slot");
        limiter.throttled_at(third, at(0.2));
        assert!(rate(at(0.2)) < 5.1);
        // Throttled at every call, it settles where halving meets the climb (1 per second here),
        // never below the floor.
        let mut now = at(0.2);
        for _ in 0..40 {
            let t = match limiter.try_acquire(Priority::Read, now) {
                Ok(t) => t,
                Err(slot) => {
                    now = slot;
                    limiter.try_acquire(Priority::Read, now).expect("slot")
                }
            };
            limiter.throttled_at(t, now);
            assert!(rate(now) >= 20.0 * FLOOR_SHARE - 1e-9);
        }
        let floor = rate(now);
        assert!(floor < 2.0, "{floor}");
        let now = now.duration_since(t0).as_secs_f64();
        // Unthrottled, it climbs by a twentieth of the ceiling per second…
        assert!((rate(at(now + 4.0)) - (floor + 4.0)).abs() < 1e-6);
        // …and never above the ceiling.
        assert!((rate(at(now + 60.0)) - 20.0).abs() < 1e-9);
        assert!((rate(at(now + 6000.0)) - 20.0).abs() < 1e-9);
    }

    #[test]
    fn a_waiter_woken_late_does_not_push_every_later_slot_back() {
        let limiter = RateLimiter::new(20.0);
        let t0 = Instant::now();
        let late = Duration::from_millis(3);
        // Each call arrives 3 ms after the slot it was told to wait for, as a busy runtime wakes it.
        let mut now = t0;
        limiter.try_acquire(Priority::Read, now).expect("free slot");
        for _ in 1..100 {
            let slot = limiter.try_acquire(Priority::Read, now).expect_err("spaced");
            now = slot + late;
            limiter
                .try_acquire(Priority::Read, now)
                .expect("the slot waited for");
        }
        // 100 calls at 20 per second: the 101st slot is 5 s after the first, not 5.3 s.
        let next = limiter.try_acquire(Priority::Read, now).expect_err("spaced");
        assert_eq!(next.duration_since(t0), Duration::from_millis(5000));
    }

    #[test]
    fn after_an_idle_stretch_at_most_two_calls_go_back_to_back() {
        let limiter = RateLimiter::new(20.0);
        let t0 = Instant::now();
        limiter.try_acquire(Priority::Read, t0).expect("free slot");
        // Ten seconds without a call: the missed slots are not owed.
        let later = t0 + Duration::from_secs(10);
        limiter.try_acquire(Priority::Read, later).expect("free slot");
        limiter
            .try_acquire(Priority::Read, later)
            .expect("the one slot missed by less than an interval");
        assert_eq!(
            limiter.try_acquire(Priority::Read, later).err(),
            Some(later + Duration::from_millis(50)),
            "then one interval apart"
        );
    }

    #[test]
    fn a_read_waits_while_a_write_is_waiting() {
        let limiter = RateLimiter::new(10.0);
        let now = Instant::now();
        limiter.lock().writes_waiting = 1;
        assert!(limiter.try_acquire(Priority::Read, now).is_err());
        assert!(limiter.try_acquire(Priority::Write, now).is_ok());
        limiter.lock().writes_waiting = 0;
        let later = now + Duration::from_secs(1);
        assert!(limiter.try_acquire(Priority::Read, later).is_ok());
    }

    #[tokio::test]
    async fn writes_go_before_waiting_reads() {
        // 5 per second: 200 ms slots, far longer than queueing the tasks below takes.
        let limiter = Arc::new(RateLimiter::new(5.0));
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        // Take the free slot so that everything below has to wait.
        limiter.acquire(Priority::Read).await;
        let mut tasks = Vec::new();
        for (i, p) in [
            Priority::Read,
            Priority::Read,
            Priority::Write,
            Priority::Read,
            Priority::Write,
        ]
        .into_iter()
        .enumerate()
        {
            let (limiter, order) = (limiter.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                limiter.acquire(p).await;
                order.lock().expect("order").push((i, p));
            }));
            // Queued one after the other, reads first.
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.expect("task");
        }
        let order = order.lock().expect("order").clone();
        let priorities: Vec<Priority> = order.iter().map(|(_, p)| *p).collect();
        assert_eq!(
            priorities,
            vec![
                Priority::Write,
                Priority::Write,
                Priority::Read,
                Priority::Read,
                Priority::Read
            ],
            "{order:?}"
        );
        assert_eq!(
            limiter.lock().writes_waiting,
            0,
            "the waiting count is given back"
        );
    }
}
