//! [`ArmReadBudget`]: the ARM reads a process may send, shared by every adapter that holds it.
//!
//! ARM throttles with a token bucket per subscription, principal and region: 250 reads,
//! refilled at 25 a second (writes and deletes have their own, 200 refilled at 10 a second).
//! A process that watches many links through one principal spends one bucket, so the
//! adapters share one budget: a local bucket of the same shape, which a read takes a token
//! from before it is sent (waiting on the caller's timer when it is empty), and which follows
//! what ARM says is left (`x-ms-ratelimit-remaining-subscription-reads`): other clients of the
//! subscription spend the same bucket, and ARM's count is the truth. A `reserve` of reads is
//! left to them (the portal, other tools): reads wait once ARM's count falls to it.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crate::time::Timestamp;

/// ARM's documented read bucket: 250 reads.
pub const ARM_READ_CAPACITY: u32 = 250;
/// ARM's documented refill of the read bucket: 25 reads a second.
pub const ARM_READ_REFILL_PER_SECOND: u32 = 25;
/// The reads left to other clients of the subscription by default.
pub const ARM_READ_RESERVE: u32 = 25;

/// A budget of ARM reads shared by the adapters that hold it (see the module docs).
#[derive(Debug)]
pub struct ArmReadBudget {
    capacity: f64,
    refill_per_second: f64,
    reserve: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Tokens available (negative: reads already promised to waiting callers).
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Option<Timestamp>,
}

impl ArmReadBudget {
    /// A budget of `capacity` reads refilled at `refill_per_second`, which waits once ARM says
    /// only `reserve` reads are left.
    pub fn new(capacity: u32, refill_per_second: u32, reserve: u32) -> Arc<ArmReadBudget> {
        let capacity = f64::from(capacity.max(1));
        Arc::new(ArmReadBudget {
            capacity,
            refill_per_second: f64::from(refill_per_second.max(1)),
            reserve: f64::from(reserve).min(capacity - 1.0),
            state: Mutex::new(Bucket {
                tokens: capacity - f64::from(reserve).min(capacity - 1.0),
                at: None,
            }),
        })
    }

    /// ARM's documented read bucket (250, 25 a second) with [`ARM_READ_RESERVE`] left to
    /// others.
    pub fn arm() -> Arc<ArmReadBudget> {
        ArmReadBudget::new(
            ARM_READ_CAPACITY,
            ARM_READ_REFILL_PER_SECOND,
            ARM_READ_RESERVE,
        )
    }

    /// The process's budget: the one every adapter on the system clock shares unless it is
    /// given another ([`super::ArmManagedInstance::with_read_budget`]).
    pub fn process() -> Arc<ArmReadBudget> {
        static PROCESS: OnceLock<Arc<ArmReadBudget>> = OnceLock::new();
        PROCESS.get_or_init(ArmReadBudget::arm).clone()
    }

    fn bucket(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn refill(&self, bucket: &mut Bucket, now: Timestamp) {
        if let Some(at) = bucket.at {
            let earned = now.since(at).as_secs_f64() * self.refill_per_second;
            bucket.tokens = (bucket.tokens + earned).min(self.capacity - self.reserve);
        }
        if bucket.at.is_none_or(|at| now > at) {
            bucket.at = Some(now);
        }
    }

    /// Takes one read at `now`: how long the caller must wait before sending it (zero while
    /// the budget lasts). The read is counted at once, so callers that wait together are
    /// spread out one refill interval apart.
    pub fn take(&self, now: Timestamp) -> Duration {
        let mut bucket = self.bucket();
        self.refill(&mut bucket, now);
        bucket.tokens -= 1.0;
        if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.tokens / self.refill_per_second)
        }
    }

    /// ARM said at `now` that `remaining` reads are left in the subscription's bucket: the
    /// budget never counts on more than that, less the reserve.
    pub fn observe_remaining(&self, remaining: u32, now: Timestamp) {
        let mut bucket = self.bucket();
        self.refill(&mut bucket, now);
        bucket.tokens = bucket.tokens.min(f64::from(remaining) - self.reserve);
    }

    /// The reads the budget would send now without waiting (rounded down; 0 when callers
    /// wait).
    pub fn available(&self, now: Timestamp) -> u32 {
        let mut bucket = self.bucket();
        self.refill(&mut bucket, now);
        if bucket.tokens <= 0.0 {
            0
        } else {
            bucket.tokens as u32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_millis(1_000_000 + ms)
    }

    #[test]
    fn reads_wait_once_the_bucket_is_spent_and_refill_at_its_rate() {
        let budget = ArmReadBudget::new(10, 5, 0);
        for _ in 0..10 {
            assert_eq!(budget.take(t(0)), Duration::ZERO);
        }
        // The 11th and 12th wait one and two refill intervals (200 ms each).
        assert_eq!(budget.take(t(0)), Duration::from_millis(200));
        assert_eq!(budget.take(t(0)), Duration::from_millis(400));
        // A second later five more were earned, of which two were promised.
        assert_eq!(budget.available(t(1000)), 3);
        // Never more than the capacity.
        assert_eq!(budget.available(t(3_600_000)), 10);
    }

    #[test]
    fn what_arm_says_is_left_is_honoured_with_the_reserve() {
        let budget = ArmReadBudget::new(250, 25, 25);
        assert_eq!(budget.available(t(0)), 225);
        // Other clients spent the subscription's bucket: ARM says 30 are left.
        budget.observe_remaining(30, t(0));
        assert_eq!(budget.available(t(0)), 5);
        for _ in 0..5 {
            assert_eq!(budget.take(t(0)), Duration::ZERO);
        }
        assert_eq!(budget.take(t(0)), Duration::from_millis(40));
        // A count above what the budget holds changes nothing.
        budget.observe_remaining(250, t(0));
        assert_eq!(budget.available(t(0)), 0);
    }
}
