//! Retries: exponential backoff with jitter that honours `Retry-After`, for transient errors only.
//!
//! The waiting goes through a [`Timer`], so under the simulator a retry costs virtual time, not
//! wall-clock time, and the jitter comes from a caller-supplied seeded [`fastrand::Rng`], so a
//! run is reproducible.

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ports::PortError;
use crate::time::Timer;

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
#[serde(default)]
pub struct RetryPolicy {
    /// Attempts in total, the first included; 1 means no retry.
    pub max_attempts: u32,
    /// The backoff after the first failure (before jitter).
    pub initial_delay: Duration,
    /// The backoff never grows beyond this (before a `Retry-After` is applied).
    pub max_delay: Duration,
    /// The backoff grows by this factor per failure (values below 1 count as 1).
    pub multiplier: f64,
    /// How the backoff is randomised.
    pub jitter: Jitter,
    /// A server's `Retry-After` is honoured up to this long; a longer one is cut to it.
    pub max_retry_after: Duration,
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
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn no_retry() -> Self {
        RetryPolicy {
            max_attempts: 1,
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
}

impl Retryable for PortError {
    fn is_transient(&self) -> bool {
        self.transient
    }
    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
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
    let mut attempt = 1;
    loop {
        match op(attempt).await {
            Ok(value) => return Ok(value),
            Err(error) if error.is_transient() && attempt < max_attempts => {
                let wait = policy.delay(attempt, error.retry_after(), rng);
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
        assert_eq!(result.unwrap_err().code, "sql:41962");
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
}
