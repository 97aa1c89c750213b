//! The virtual clock: [`SimClock`] implements [`Clock`] and [`Timer`]; sleeping advances the
//! world to the deadline instantly instead of waiting.

use async_trait::async_trait;

use crate::time::{Clock, Timer, Timestamp};

use super::Sim;

/// The world's virtual clock. `sleep_until` runs the world up to the deadline and returns at
/// once; nothing ever sleeps for real.
#[derive(Debug, Clone)]
pub struct SimClock {
    sim: Sim,
}

impl SimClock {
    pub(crate) fn new(sim: Sim) -> Self {
        SimClock { sim }
    }
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        self.sim.now()
    }
}

#[async_trait]
impl Timer for SimClock {
    async fn sleep_until(&self, deadline: Timestamp) {
        self.sim.advance_to(deadline);
    }
}
