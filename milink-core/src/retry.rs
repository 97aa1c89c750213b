//! Retries: exponential backoff with jitter that honours `Retry-After`, for transient errors only.
//!
//! Two budgets: most transient errors (dropped connections, 5xx, timeouts) are retried up to
//! [`RetryPolicy::max_attempts`] times in total; answers that only say "busy, ask again later"
//! ([`Retryable::is_busy`]: ARM 409 `ConflictingServerOperation` / `ManagedInstanceIsBusy`, 429)
//! are retried for [`RetryPolicy::busy_timeout`] instead, because the operation they wait for
//! (a link `PUT`, an instance update) runs for minutes, longer than the backoff of a few attempts.
//!
//! The waiting goes through a [`Timer`], so under the simulator a retry costs virtual time, not
//! wall-clock time, and the jitter comes from a caller-supplied seeded [`fastrand::Rng`], so a
//! run is reproducible.

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ports::PortError;
use crate::time::{Timer, Timestamp};

/// How the backoff is randomised, so that many clients do not retry in lockstep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Jitter {
    /// No randomness: exactly the exponential backoff.
    None,
    /// Uniform in `[0, backoff)`.
    Full,
    /// Half the backoff plus uniform in `[0, backoff / 2)`: never shorter than half.
    #[default]
    Equal,
}

/// When and how often to retry a transient failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in total, the first included; 1 means no retry. Busy answers do not count.
    pub max_attempts: u32,
    /// The backoff after the first failure (before jitter).
    pub initial_delay: Duration,
    /// The backoff never grows beyond this (before a `Retry-After` is applied).
    pub max_delay: Duration,
    /// The backoff grows by this factor per failure: at least 1 (`SessionOptions::validate`
    /// refuses less; `backoff` treats less as 1).
    pub multiplier: f64,
    /// How the backoff is randomised.
    pub jitter: Jitter,
    /// A server's `Retry-After` is honoured up to this long; a longer one is cut to it.
    pub max_retry_after: Duration,
    /// How long busy answers are retried, counted from the call's first attempt: ARM 409
    /// `ConflictingServerOperation` and `ManagedInstanceIsBusy` (another operation is still
    /// running; a re-sent link `PUT` meets the first one for the minutes it runs) and 429
    /// throttling. Each wait honours `Retry-After` (up to `max_retry_after`) and grows like the
    /// backoff; the driver stops when the next attempt would start after this budget, and never
    /// later than the machine's timeout of the step. 0 retries them like any transient error.
    pub busy_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: Jitter::Equal,
            max_retry_after: Duration::from_secs(5 * 60),
            busy_timeout: Duration::from_secs(30 * 60),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries, not even busy answers.
    pub fn no_retry() -> Self {
        RetryPolicy {
            max_attempts: 1,
            busy_timeout: Duration::ZERO,
            ..RetryPolicy::default()
        }
    }

    /// The exponential backoff after failed attempt `attempt` (1-based), capped at `max_delay`,
    /// before jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let multiplier = if self.multiplier.is_finite() && self.multiplier >= 1.0 {
            self.multiplier
        } else {
            1.0
        };
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial_delay.as_secs_f64() * multiplier.powi(exponent);
        let cap = self.max_delay.as_secs_f64();
        if !secs.is_finite() || secs >= cap {
            self.max_delay
        } else {
            Duration::from_secs_f64(secs.max(0.0))
        }
    }

    /// How long to wait after failed attempt `attempt` (1-based) before the next one: the jittered
    /// backoff, but never less than `retry_after` (itself capped at `max_retry_after`).
    pub fn delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        rng: &mut fastrand::Rng,
    ) -> Duration {
        let backoff = self.backoff(attempt);
        let jittered = match self.jitter {
            Jitter::None => backoff,
            Jitter::Full => backoff.mul_f64(rng.f64()),
            Jitter::Equal => {
                let half = backoff / 2;
                half + half.mul_f64(rng.f64())
            }
        };
        match retry_after {
            Some(after) => jittered.max(after.min(self.max_retry_after)),
            None => jittered,
        }
    }
}

/// An error that may be worth retrying.
pub trait Retryable {
    /// Retrying the same call may succeed.
    fn is_transient(&self) -> bool;
    /// How long the remote side asked to wait, if it said.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
    /// A transient answer that only means "busy, ask again later"; retried for
    /// [`RetryPolicy::busy_timeout`] rather than `max_attempts` times.
    fn is_busy(&self) -> bool {
        false
    }
}

impl Retryable for PortError {
    fn is_transient(&self) -> bool {
        self.transient
    }
    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
    fn is_busy(&self) -> bool {
        PortError::is_busy(self)
    }
}

impl Retryable for crate::Error {
    fn is_transient(&self) -> bool {
        crate::Error::is_transient(self)
    }
}

/// Runs `op` (given the 1-based attempt number) until it succeeds, fails permanently, or
/// `policy.max_attempts` attempts have failed; sleeps between attempts through `timer`.
pub async fn retry<T, E, F, Fut>(
    policy: &RetryPolicy,
    timer: &dyn Timer,
    rng: &mut fastrand::Rng,
    op: F,
) -> Result<T, E>
where
    E: Retryable,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    retry_notify(policy, timer, rng, op, |_, _, _| {}).await
}

/// [`retry`], calling `on_retry(failed_attempt, &error, wait)` before each wait.
pub async fn retry_notify<T, E, F, Fut, N>(
    policy: &RetryPolicy,
    timer: &dyn Timer,
    rng: &mut fastrand::Rng,
    op: F,
    on_retry: N,
) -> Result<T, E>
where
    E: Retryable,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    N: FnMut(u32, &E, Duration),
{
    retry_notify_until(policy, timer, rng, None, op, on_retry).await
}

/// [`retry_notify`] whose busy answers are also not retried past `busy_until` (the caller's own
/// deadline, e.g. the step's timeout), when given.
///
/// A transient error that is not busy is retried while fewer than `max_attempts` such errors
/// were seen. A busy one is retried while the next attempt would start no later than the first
/// attempt plus `busy_timeout` (and `busy_until`). The backoff of each kind grows with its own
/// count; `Retry-After` is a floor for both.
pub async fn retry_notify_until<T, E, F, Fut, N>(
    policy: &RetryPolicy,
    timer: &dyn Timer,
    rng: &mut fastrand::Rng,
    busy_until: Option<Timestamp>,
    mut op: F,
    mut on_retry: N,
) -> Result<T, E>
where
    E: Retryable,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    N: FnMut(u32, &E, Duration),
{
    let max_attempts = policy.max_attempts.max(1);
    let budget_end = timer.now().plus(policy.busy_timeout);
    let busy_end = busy_until.map_or(budget_end, |until| until.min(budget_end));
    let mut attempt = 1;
    let mut failures = 0;
    let mut busy = 0;
    loop {
        match op(attempt).await {
            Ok(value) => return Ok(value),
            Err(error) if error.is_transient() => {
                let wait = if error.is_busy() && !policy.busy_timeout.is_zero() {
                    busy += 1;
                    let wait = policy.delay(busy, error.retry_after(), rng);
                    if timer.now().plus(wait) > busy_end {
                        return Err(error);
                    }
                    wait
                } else {
                    failures += 1;
                    if failures >= max_attempts {
                        return Err(error);
                    }
                    policy.delay(failures, error.retry_after(), rng)
                };
                on_retry(attempt, &error, wait);
                timer.sleep_until(timer.now().plus(wait)).await;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::VirtualTimer;
    use crate::time::{Clock, Timestamp};

    fn policy(jitter: Jitter) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            multiplier: 2.0,
            jitter,
            max_retry_after: Duration::from_secs(60),
            busy_timeout: Duration::from_secs(120),
        }
    }

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap() {
        let p = policy(Jitter::None);
        let ms: Vec<u128> = (1..=6).map(|a| p.backoff(a).as_millis()).collect();
        assert_eq!(ms, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(1));
        let flat = RetryPolicy {
            multiplier: f64::NAN,
            ..p.clone()
        };
        assert_eq!(flat.backoff(5), Duration::from_millis(100));
    }

    #[test]
    fn jitter_stays_within_its_bounds_and_varies() {
        let mut rng = fastrand::Rng::with_seed(7);
        for attempt in 1..=6 {
            let full = policy(Jitter::Full);
            let equal = policy(Jitter::Equal);
            let base = full.backoff(attempt);
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..200 {
                let d = full.delay(attempt, None, &mut rng);
                assert!(d < base, "full jitter {d:?} >= {base:?}");
                seen.insert(d);
                let e = equal.delay(attempt, None, &mut rng);
                assert!(e >= base / 2 && e < base, "equal jitter {e:?} vs {base:?}");
            }
            assert!(seen.len() > 100, "jitter hardly varies: {}", seen.len());
        }
    }

    #[test]
    fn retry_after_is_a_floor_up_to_its_own_cap() {
        let mut rng = fastrand::Rng::with_seed(1);
        let p = policy(Jitter::Full);
        for _ in 0..100 {
            assert!(p.delay(1, Some(Duration::from_secs(3)), &mut rng) >= Duration::from_secs(3));
        }
        // Honoured above max_delay (the server knows), but not beyond max_retry_after.
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3600)), &mut rng),
            Duration::from_secs(60)
        );
        // A short Retry-After does not shorten the backoff.
        let none = policy(Jitter::None);
        assert_eq!(
            none.delay(3, Some(Duration::from_millis(1)), &mut rng),
            Duration::from_millis(400)
        );
    }

    #[test]
    fn same_seed_same_delays() {
        let p = policy(Jitter::Full);
        let run = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (1..=5)
                .map(|a| p.delay(a, None, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[tokio::test]
    async fn retries_transient_errors_until_success_sleeping_on_the_timer() {
        let timer = VirtualTimer::new(Timestamp::from_millis(1_000));
        let mut rng = fastrand::Rng::with_seed(3);
        let mut calls = 0;
        let mut waits = Vec::new();
        let result: Result<&str, PortError> = retry_notify(
            &policy(Jitter::None),
            &timer,
            &mut rng,
            |attempt| {
                calls += 1;
                async move {
                    if attempt < 3 {
                        Err(PortError::transient("http:503", "busy"))
                    } else {
                        Ok("done")
                    }
                }
            },
            |attempt, _, wait| waits.push((attempt, wait)),
        )
        .await;
        assert_eq!(result, Ok("done"));
        assert_eq!(calls, 3);
        assert_eq!(
            waits,
            vec![
                (1, Duration::from_millis(100)),
                (2, Duration::from_millis(200))
            ]
        );
        assert_eq!(timer.now(), Timestamp::from_millis(1_300));
    }

    #[tokio::test]
    async fn honours_retry_after_from_the_error() {
        let timer = VirtualTimer::new(Timestamp::EPOCH);
        let mut rng = fastrand::Rng::with_seed(3);
        let result: Result<(), PortError> = retry(
            &policy(Jitter::Full),
            &timer,
            &mut rng,
            |attempt| async move {
                if attempt == 1 {
                    Err(PortError::transient("arm:429:TooManyRequests", "throttled")
                        .with_retry_after(Duration::from_secs(7)))
                } else {
                    Ok(())
                }
            },
        )
        .await;
        assert_eq!(result, Ok(()));
        assert!(timer.now() >= Timestamp::from_millis(7_000));
        assert!(timer.now() < Timestamp::from_millis(8_000));
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried() {
        let timer = VirtualTimer::new(Timestamp::EPOCH);
        let mut rng = fastrand::Rng::with_seed(3);
        let mut calls = 0;
        let result: Result<(), PortError> = retry(&policy(Jitter::Full), &timer, &mut rng, |_| {
            calls += 1;
            async { Err(PortError::permanent("sql:41962", "refused")) }
        })
        .await;
        assert_eq!(result.unwrap_err().code(), "sql:41962");
        assert_eq!(calls, 1);
        assert_eq!(timer.now(), Timestamp::EPOCH);
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts_with_the_last_error() {
        let timer = VirtualTimer::new(Timestamp::EPOCH);
        let mut rng = fastrand::Rng::with_seed(3);
        let mut calls = 0;
        let result: Result<(), PortError> =
            retry(&policy(Jitter::None), &timer, &mut rng, |attempt| {
                calls += 1;
                async move { Err(PortError::transient("io", format!("drop {attempt}"))) }
            })
            .await;
        assert_eq!(result.unwrap_err().message, "drop 4");
        assert_eq!(calls, 4);
        // Three waits: 100 + 200 + 400 ms.
        assert_eq!(timer.now(), Timestamp::from_millis(700));

        let mut calls = 0;
        let _: Result<(), PortError> = retry(&RetryPolicy::no_retry(), &timer, &mut rng, |_| {
            calls += 1;
            async { Err(PortError::transient("io", "drop")) }
        })
        .await;
        assert_eq!(calls, 1);
    }

    fn conflict() -> PortError {
        PortError::transient(
            "arm:409:ConflictingServerOperation",
            "an operation on the link is in progress",
        )
        .with_retry_after(Duration::from_secs(10))
    }

    #[test]
    fn busy_answers_are_the_409_conflicts_and_throttling() {
        for code in [
            "arm:409:ConflictingServerOperation",
            "arm:409:ManagedInstanceIsBusy",
            "arm:429:SubscriptionTooManyRequests",
            "arm:429:ConflictingSubscriptionOperation",
            "http:429",
        ] {
            assert!(PortError::transient(code, "m").is_busy(), "{code}");
        }
        for code in [
            "arm:409:DistributedAvailabilityGroupSetRoleChangeRoleAlreadyInProgress",
            "arm:409:DistributedAvailabilityGroupFailoverSecondariesNotSynchronizing",
            "arm:503:TooManyRequests",
            "http:503",
            "sql:41962",
            "io",
            "timeout",
        ] {
            assert!(!PortError::transient(code, "m").is_busy(), "{code}");
        }
    }

    #[tokio::test]
    async fn busy_answers_are_retried_past_max_attempts_for_the_busy_budget() {
        // The first operation runs for 100 s; max_attempts (4) alone would give up after ~30 s.
        let timer = VirtualTimer::new(Timestamp::EPOCH);
        let mut rng = fastrand::Rng::with_seed(3);
        let mut waits = Vec::new();
        let result: Result<u32, PortError> = retry_notify(
            &policy(Jitter::Full),
            &timer,
            &mut rng,
            |attempt| {
                let busy = timer.now() < Timestamp::from_millis(100_000);
                async move { if busy { Err(conflict()) } else { Ok(attempt) } }
            },
            |_, _, wait| waits.push(wait),
        )
        .await;
        let attempts = result.unwrap();
        assert!(attempts > 4, "{attempts}");
        assert!(
            waits.iter().all(|w| *w >= Duration::from_secs(10)),
            "{waits:?}"
        );
        assert!(
            timer.now() < Timestamp::from_millis(111_000),
            "{:?}",
            timer.now()
        );
    }

    /// Runs a call that is always answered with a conflict: (error code, calls, time at the end).
    async fn always_busy(
        policy: RetryPolicy,
        until: Option<Timestamp>,
    ) -> (String, u32, Timestamp) {
        let timer = VirtualTimer::new(Timestamp::EPOCH);
        let mut rng = fastrand::Rng::with_seed(3);
        let mut calls = 0;
        let result: Result<(), PortError> = retry_notify_until(
            &policy,
            &timer,
            &mut rng,
            until,
            |_| {
                calls += 1;
                async { Err(conflict()) }
            },
            |_, _, _| {},
        )
        .await;
        (result.unwrap_err().code(), calls, timer.now())
    }

    #[tokio::test]
    async fn busy_answers_give_up_at_the_busy_budget_or_the_callers_deadline() {
        let (code, calls, now) = always_busy(policy(Jitter::None), None).await;
        assert_eq!(code, "arm:409:ConflictingServerOperation");
        assert_eq!(calls, 13, "one attempt every 10 s within the 120 s budget");
        assert_eq!(now, Timestamp::from_millis(120_000));
        // The caller's deadline (the step's timeout) is earlier than the budget.
        let until = Some(Timestamp::from_millis(35_000));
        let (_, calls, now) = always_busy(policy(Jitter::None), until).await;
        assert_eq!((calls, now), (4, Timestamp::from_millis(30_000)));
        // No busy budget: busy answers count against max_attempts like any transient error.
        let plain = RetryPolicy {
            busy_timeout: Duration::ZERO,
            ..policy(Jitter::None)
        };
        let (_, calls, _) = always_busy(plain, None).await;
        assert_eq!(calls, 4);
        let (_, calls, _) = always_busy(RetryPolicy::no_retry(), None).await;
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn other_transient_errors_keep_their_attempt_limit_between_busy_answers() {
        let timer = VirtualTimer::new(Timestamp::EPOCH);
        let mut rng = fastrand::Rng::with_seed(3);
        let mut calls = 0;
        let result: Result<(), PortError> =
            retry(&policy(Jitter::None), &timer, &mut rng, |attempt| {
                calls += 1;
                async move {
                    if attempt % 2 == 1 {
                        Err(conflict())
                    } else {
                        Err(PortError::transient("http:503", "unavailable"))
                    }
                }
            })
            .await;
        // Four 503s end it (max_attempts), with four conflicts between them.
        assert_eq!(result.unwrap_err().code(), "http:503");
        assert_eq!(calls, 8);
    }
}
