//! The machine with its outbox: inputs in; what to perform, what happened, when to wake and
//! where the operation stands out.
//!
//! [`Machine`] decides one transition at a time. [`Engine`] owns a machine and everything a
//! driver would otherwise have to decide around it: the effects not yet handed out, the events
//! not yet reported, the operation being driven and whether it has reached its goal, failed,
//! stalled or run into a split brain. A driver (such as [`crate::session::Session`]) only moves
//! data:
//!
//! ```text
//! for input in engine.begin(command, now, timeout) { journal(input); engine.handle(input, now) }
//! loop match engine.poll(now) {
//!     Poll::Perform(effect) => feed back Input::Observed { step, result: ports.perform(effect) },
//!     Poll::Submit(input)   => feed back input (a Tick after a wait, a Resume),
//!     Poll::Sleep(until)    => sleep until `until`,
//!     Poll::Done(outcome)   => return outcome,
//! }
//! ```
//!
//! and drains [`Engine::poll_event`] after each input. Every input handed to
//! [`Engine::handle`] must be journaled first (the engine's outbox is not journaled: after a
//! restart, [`Engine::begin`] sees effects in flight that nobody holds and asks for a
//! [`Input::Resume`], which the machine answers by re-issuing them).
//!
//! Pure like the machine: no I/O, no clock; time comes in as `now`.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::effect::{Effect, StepId};
use super::input::{Command, Input, LinkObservation, Observation, Operation, ProgressEvent};
use super::machine::{Machine, Rejected};
use super::state::{Phase, State};
use super::{Side, StepError};
use crate::time::Timestamp;

/// Something that happened in the machine, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// The link moved to another phase.
    StateChanged {
        /// The phase it left.
        from: Phase,
        /// The phase it entered.
        to: Phase,
    },
    /// Progress: the phase entered, seeding, lag, the catch-up gate, lost transactions, split
    /// brain.
    Progress(ProgressEvent),
}

/// What the driver does next ([`Engine::poll`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Poll {
    /// Perform this effect through the ports and hand its result back as
    /// [`Input::Observed`].
    Perform(Effect),
    /// Journal this input and hand it back to [`Engine::handle`] (a [`Input::Tick`] once a
    /// wait is over, or a [`Input::Resume`] for effects in flight that nobody performs).
    Submit(Input),
    /// Sleep until this time, then poll again.
    Sleep(Timestamp),
    /// The operation is over.
    Done(Result<(), Ended>),
}

/// Why an operation ended without reaching its goal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ended {
    /// The link is `Failed` with this error.
    #[error("the link failed: {}: {}", .0.code, .0.message)]
    Failed(StepError),
    /// Both sides report PRIMARY; only a repair continues.
    #[error("both sides report PRIMARY: repair the split brain")]
    SplitBrain,
    /// The machine neither issues effects nor waits for anything.
    #[error("the operation stalled: nothing to perform and nothing to wait for")]
    Stalled,
    /// The driver's time budget for the operation ran out.
    #[error("the operation ran out of time")]
    TimedOut,
}

/// Where the current operation stands ([`Engine::operation_status`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum OperationStatus {
    /// Nothing was asked of this link yet.
    Idle,
    /// The operation is under way.
    Running {
        /// The operation.
        operation: Operation,
    },
    /// The operation reached its goal.
    Reached {
        /// The operation.
        operation: Operation,
    },
    /// The link failed during the operation.
    Failed {
        /// The operation.
        operation: Operation,
        /// Why.
        error: StepError,
        /// A resume retries it without outside help.
        retryable: bool,
    },
    /// The operation cannot go on: nothing to perform and nothing to wait for.
    Stalled {
        /// The operation.
        operation: Operation,
    },
    /// Both sides report PRIMARY: only a repair goes on from here.
    SplitBrain {
        /// The operation.
        operation: Operation,
    },
}

/// Whether the last [`Input::Resume`] the engine asked for re-issued nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resumes {
    Active,
    Asked,
    ReissuedNothing,
}

/// What was accepted ([`Engine::handle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// The machine took the input: journal it (before [`Engine::handle`], on a copy, or after,
    /// as the driver's durability needs).
    Accepted,
    /// An observation for a step the machine no longer waits on: ignored, nothing changed.
    Stale,
}

/// A [`Machine`] with its outbox and the operation being driven. See the module docs.
#[derive(Debug, Clone)]
pub struct Engine {
    machine: Machine,
    outbox: VecDeque<Effect>,
    events: VecDeque<Event>,
    operation: Option<Operation>,
    last_error: Option<StepError>,
    last_reading: Option<LinkObservation>,
    give_up: Option<Timestamp>,
    waiting_for: Option<Timestamp>,
    tick_asked: bool,
    stalled: bool,
    resumes: Resumes,
}

impl Engine {
    /// An engine over `machine` (new, or rebuilt from a journal), driving `operation` (the
    /// last one requested, if any). Its outbox is empty: effects the machine has in flight are
    /// re-issued by the [`Input::Resume`] that [`Engine::begin`] or [`Engine::needs_resume`]
    /// asks for.
    pub fn new(machine: Machine, operation: Option<Operation>) -> Engine {
        Engine {
            machine,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            operation,
            last_error: None,
            last_reading: None,
            give_up: None,
            waiting_for: None,
            tick_asked: false,
            stalled: false,
            resumes: Resumes::Active,
        }
    }

    /// The machine.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// The operation last requested, if any.
    pub fn operation(&self) -> Option<Operation> {
        self.operation
    }

    /// After rebuilding from a journal: whether an [`Input::Resume`] must be handed in (effects
    /// were in flight, or the link failed with a retryable error).
    pub fn needs_resume(&self) -> bool {
        !self.machine.in_flight().is_empty() || self.machine.state().is_retryable_failure()
    }

    /// Why the link failed, if it is `Failed`; otherwise the last step or probe error seen.
    pub fn last_error(&self) -> Option<StepError> {
        match self.machine.state() {
            State::Failed { error, .. } => Some(error.clone()),
            _ => self
                .last_error
                .clone()
                .or_else(|| self.machine.last_probe_error().cloned()),
        }
    }

    /// The latest reading of both sides: the machine's own, or one taken outside it
    /// ([`Engine::note_reading`]).
    pub fn last_reading(&self) -> Option<&LinkObservation> {
        self.last_reading.as_ref()
    }

    /// Records a reading of both sides taken outside the machine (a health check while an
    /// operation runs).
    pub fn note_reading(&mut self, reading: LinkObservation) {
        self.last_reading = Some(reading);
    }

    /// The side that accepts writes now (see [`Machine::primary`]).
    pub fn primary(&self) -> Side {
        self.machine.primary(self.last_reading.as_ref())
    }

    /// After a role change: whether transactions may have been lost (a forced failover, a
    /// repaired split brain). False in every other state.
    pub fn data_loss_possible(&self) -> bool {
        matches!(
            self.machine.state(),
            State::FailedOver {
                data_loss_possible: true,
                ..
            }
        )
    }

    /// Whether both sides report PRIMARY (the machine is in SplitBrain).
    pub fn is_split_brain(&self) -> bool {
        self.machine.state().phase() == Phase::SplitBrain
    }

    /// Starts driving an operation: `command` (none to continue the current one) with a time
    /// budget of `timeout` from `now`. Returns the inputs to journal and hand in first, in
    /// order: a [`Input::Resume`] when effects are in flight that nobody performs (an earlier
    /// driver stopped or crashed mid-way), then the command, or a `Resume` when continuing a
    /// link that failed with a retryable error.
    pub fn begin(
        &mut self,
        command: Option<Command>,
        now: Timestamp,
        timeout: Duration,
    ) -> Vec<Input> {
        let retryable_failure = self.machine.state().is_retryable_failure();
        let lost = self
            .machine
            .in_flight()
            .iter()
            .any(|e| !self.outbox.iter().any(|q| q.step() == e.step()));
        if lost {
            self.outbox.clear();
        }
        self.give_up = Some(now.plus(timeout));
        self.waiting_for = None;
        self.tick_asked = false;
        self.stalled = false;
        self.resumes = Resumes::Active;
        let mut inputs = Vec::with_capacity(2);
        if lost {
            inputs.push(Input::Resume);
        }
        match command {
            Some(command) => inputs.push(Input::Command(command)),
            None if retryable_failure => inputs.push(Input::Resume),
            None => {}
        }
        inputs
    }

    /// Hands one input to the machine at time `now`. On `Err` (and on [`Handled::Stale`])
    /// nothing changed.
    pub fn handle(&mut self, input: Input, now: Timestamp) -> Result<Handled, Rejected> {
        let before = self.machine.state().phase();
        let step = match self.machine.handle(input.clone(), now) {
            Ok(step) => step,
            Err(rejected) => {
                if let Input::Observed { step, .. } = &input
                    && !self.machine.in_flight().iter().any(|e| e.step() == *step)
                {
                    return Ok(Handled::Stale);
                }
                return Err(rejected);
            }
        };
        let is_tick = matches!(input, Input::Tick);
        let is_resume = matches!(input, Input::Resume);
        match input {
            Input::Command(c) => {
                if let Some(operation) = Operation::of(&c) {
                    self.operation = Some(operation);
                }
            }
            Input::Observed {
                result: Ok(Observation::Link(link)),
                ..
            } => self.last_reading = Some(link),
            Input::Observed { result: Err(e), .. } => self.last_error = Some(e),
            Input::Observed { .. } | Input::Tick | Input::Resume => {}
        }
        let after = self.machine.state().phase();
        if before != after {
            self.events.push_back(Event::StateChanged {
                from: before,
                to: after,
            });
        }
        self.events
            .extend(step.events.into_iter().map(Event::Progress));
        let issued = !step.effects.is_empty();
        self.outbox.extend(step.effects);
        if is_resume && self.resumes == Resumes::Asked {
            // A Resume that re-issued nothing: asking again would spin.
            self.resumes = if issued {
                Resumes::Active
            } else {
                Resumes::ReissuedNothing
            };
        }
        if is_tick && std::mem::take(&mut self.tick_asked) {
            // A tick that moved nothing: the deadline stays in the past and nothing is to be
            // done, so the driver would tick forever.
            let unmoved = self.machine.deadline().is_some_and(|d| d <= now);
            self.stalled = unmoved
                && self.outbox.is_empty()
                && !self.machine.state().is_failed()
                && !self.reached();
        }
        Ok(Handled::Accepted)
    }

    /// The next effect to perform now, if any (effects the machine no longer waits on are
    /// dropped).
    pub fn poll_effect(&mut self) -> Option<Effect> {
        let in_flight: Vec<StepId> = self.machine.in_flight().iter().map(Effect::step).collect();
        while let Some(effect) = self.outbox.pop_front() {
            if in_flight.contains(&effect.step()) {
                return Some(effect);
            }
        }
        None
    }

    /// The next thing that happened, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When the machine wants a [`Input::Tick`] next, if anything is time-bound.
    pub fn deadline(&self) -> Option<Timestamp> {
        self.machine.deadline()
    }

    /// Where the current operation stands.
    pub fn operation_status(&self) -> OperationStatus {
        let Some(operation) = self.operation else {
            return OperationStatus::Idle;
        };
        if self.stalled {
            return OperationStatus::Stalled { operation };
        }
        if operation.reached(self.machine.state()) {
            return OperationStatus::Reached { operation };
        }
        if let State::Failed {
            error, retryable, ..
        } = self.machine.state()
        {
            return OperationStatus::Failed {
                operation,
                error: error.clone(),
                retryable: *retryable,
            };
        }
        if self.is_split_brain() && operation != Operation::RepairSplitBrain {
            return OperationStatus::SplitBrain { operation };
        }
        OperationStatus::Running { operation }
    }

    fn reached(&self) -> bool {
        self.operation
            .is_some_and(|operation| operation.reached(self.machine.state()))
    }

    /// What the driver does next, at time `now`: perform an effect, hand in an input, sleep,
    /// or stop because the operation is over.
    pub fn poll(&mut self, now: Timestamp) -> Poll {
        if let Some(deadline) = self.waiting_for.take()
            && now >= deadline
        {
            self.tick_asked = true;
            return Poll::Submit(Input::Tick);
        }
        match self.operation_status() {
            // Nothing was ever asked of this link: nothing to continue.
            OperationStatus::Idle | OperationStatus::Reached { .. } => return Poll::Done(Ok(())),
            OperationStatus::Failed { error, .. } => return Poll::Done(Err(Ended::Failed(error))),
            OperationStatus::SplitBrain { .. } => return Poll::Done(Err(Ended::SplitBrain)),
            OperationStatus::Stalled { .. } => return Poll::Done(Err(Ended::Stalled)),
            OperationStatus::Running { .. } => {}
        }
        if self.give_up.is_some_and(|g| now >= g) {
            return Poll::Done(Err(Ended::TimedOut));
        }
        if let Some(effect) = self.poll_effect() {
            self.resumes = Resumes::Active;
            return Poll::Perform(effect);
        }
        match self.machine.deadline() {
            Some(deadline) => {
                self.resumes = Resumes::Active;
                self.waiting_for = Some(deadline);
                Poll::Sleep(self.give_up.map_or(deadline, |g| deadline.min(g)))
            }
            None if self.machine.is_terminal() || self.machine.in_flight().is_empty() => {
                Poll::Done(Err(Ended::Stalled))
            }
            // In flight but not queued, and the last Resume re-issued nothing: give up rather
            // than spin.
            None if self.resumes == Resumes::ReissuedNothing => Poll::Done(Err(Ended::Stalled)),
            None => {
                self.resumes = Resumes::Asked;
                Poll::Submit(Input::Resume)
            }
        }
    }
}
