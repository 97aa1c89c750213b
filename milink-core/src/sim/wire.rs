//! Virtual time meets real sockets: when a simulated server is reached over loopback TDS
//! ([`super::tds`]), its answers take real time to arrive while the world's clock jumps.
//!
//! The simulator's clock ([`SimClock`]) advances the world to a deadline as soon as someone
//! sleeps. A session races every call against a timeout on its timer; with a call on the wire
//! that timeout would fire, and advance the world, before the answer arrived. [`WireClock`]
//! first waits until no call is on the wire ([`InFlight`]): the session polls the call before
//! its timeout, so a call that answers wins, and one that hangs is cut by the connection's own
//! command timeout (in wall time). Callers count their wire calls with [`InFlight::enter`];
//! an in-process call that must not overtake a wire call waits with [`InFlight::idle`].

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::time::{Clock, Timer, Timestamp};

use super::SimClock;

/// How many calls are on the wire now, and a wake-up when the count drops to zero.
#[derive(Debug, Default)]
pub struct InFlight {
    calls: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    /// A new counter, shared by the ports and the clock.
    pub fn new() -> Arc<Self> {
        Arc::new(InFlight::default())
    }

    /// Counts a call until the returned guard is dropped (answered, failed or cancelled).
    pub fn enter(self: &Arc<Self>) -> OnTheWire {
        self.calls.fetch_add(1, Ordering::SeqCst);
        OnTheWire(Arc::clone(self))
    }

    /// How many calls are on the wire now.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Returns once no call is on the wire.
    pub async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.calls() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// One call on the wire; dropping it ends it.
#[derive(Debug)]
#[must_use = "the call is counted only while the guard lives"]
pub struct OnTheWire(Arc<InFlight>);

impl Drop for OnTheWire {
    fn drop(&mut self) {
        if self.0.calls.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// The simulator's virtual clock, whose sleeps wait until no call is on the wire before time
/// jumps. Give it to a session whose ports reach the simulator over TDS.
#[derive(Debug, Clone)]
pub struct WireClock {
    clock: SimClock,
    in_flight: Arc<InFlight>,
}

impl WireClock {
    /// `clock`, holding its jumps while a call counted by `in_flight` is on the wire.
    pub fn new(clock: SimClock, in_flight: Arc<InFlight>) -> Self {
        WireClock { clock, in_flight }
    }
}

impl Clock for WireClock {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

#[async_trait]
impl Timer for WireClock {
    async fn sleep_until(&self, deadline: Timestamp) {
        self.in_flight.idle().await;
        self.clock.sleep_until(deadline).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Lab;

    #[tokio::test]
    async fn the_clock_waits_for_the_wire_then_jumps() {
        let lab = Lab::tailspin(1).unwrap();
        let in_flight = InFlight::new();
        let clock = WireClock::new(lab.sim.clock(), Arc::clone(&in_flight));
        let start = clock.now();
        let deadline = start.plus(std::time::Duration::from_secs(120));
        let call = in_flight.enter();
        assert_eq!(in_flight.calls(), 1);
        let mut sleep = Box::pin(clock.sleep_until(deadline));
        // While the call is on the wire the sleep does not return and time stands still.
        assert!(futures_util::FutureExt::now_or_never(&mut sleep).is_none());
        assert_eq!(clock.now(), start);
        drop(call);
        assert_eq!(in_flight.calls(), 0);
        sleep.await;
        assert_eq!(clock.now(), deadline);
    }
}
