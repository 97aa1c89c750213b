//! Time and resume: ticks, timeouts, crash-resume.

use super::*;

impl Machine {
    pub(super) fn tick(&mut self, now: Timestamp) -> Vec<Effect> {
        if self.timeout_at.is_some_and(|t| now >= t) {
            return self.time_out();
        }
        if self.wake_at.is_some_and(|w| now >= w) {
            self.wake_at = None;
            return self.kick();
        }
        Vec::new()
    }

    /// Crash-resume: re-issue what is in flight with the same ids, except a call that must not
    /// run twice (a role change or the link's removal) whose reply was not seen: it is replaced
    /// by a read of the link, which decides whether to issue it again.
    pub(super) fn resume(&mut self) -> Vec<Effect> {
        let unconfirmed = !self.in_flight.is_empty();
        let change = role_change_mut(&mut self.state);
        if let Some(change) = change
            && *change == RoleChange::Issued
            && unconfirmed
        {
            *change = RoleChange::Checking;
            self.in_flight.clear();
            self.wake_at = None;
            return vec![self.probe(Probe::Link)];
        }
        self.in_flight.clone()
    }

    /// Sizes the seeding timeout from the rate measured so far (see
    /// [`MachineOptions::seeding_timeout_sized`]): when the slowest database's percent rises,
    /// the deadline moves to the seeding's start plus [`SEEDING_MARGIN`] times the projected
    /// whole seeding, if that is later; never past `seeding_max_timeout` from the start.
    pub(super) fn size_seeding_timeout(&mut self, databases: &[SeedingProgress], now: Timestamp) {
        let Some(started) = self.seeding_started_at else {
            return;
        };
        // A database not reporting yet is the slowest (`None` orders first).
        let slowest = databases.iter().map(|p| p.percent).min().flatten();
        let Some(percent) = slowest.filter(|p| *p > 0) else {
            return;
        };
        match self.seeding_progress {
            Some((best, _)) if percent == best => return,
            // Seeding restarted (a disconnect, a restart): measure again from here.
            Some((best, _)) if percent < best => {
                self.seeding_progress = None;
                return;
            }
            _ => {}
        }
        self.seeding_progress = Some((percent, now));
        let o = &self.spec.options;
        let projected = now.since(started).saturating_mul(100) / u32::from(percent);
        let limit = projected
            .saturating_mul(SEEDING_MARGIN)
            .min(o.seeding_max_timeout)
            .max(o.seeding_timeout);
        let deadline = started.plus(limit);
        self.timeout_at = Some(self.timeout_at.map_or(deadline, |t| t.max(deadline)));
    }

    pub(super) fn time_out(&mut self) -> Vec<Effect> {
        let limit = match (&self.state, self.seeding_started_at, self.timeout_at) {
            (State::Seeding { .. }, Some(started), Some(deadline)) => deadline.since(started),
            _ => self.timeout_for(&self.state).unwrap_or_default(),
        };
        let detail = match &self.state {
            State::CatchingUp {
                blocker: Some(b), ..
            } => format!(
                ": {b}. Stop the application workload on the primary, check the lag, then resume"
            ),
            State::AwaitingFirstFullBackup { missing, .. } => format!(
                ": the managed instance has no qualifying full backup yet of {}; the link is \
                 kept until it has one. Resume to keep waiting",
                join_names(missing)
            ),
            State::Seeding { databases } => format!(
                ": seeding progress {}. Check the error logs for 1408/1412 and the network",
                databases
                    .iter()
                    .map(|p| {
                        let percent = match p.percent {
                            Some(pc) => format!("{} {pc}%", p.database),
                            None => format!("{} unknown", p.database),
                        };
                        match &p.last_error {
                            Some(e) => format!("{percent} (last error: {e})"),
                            None => percent,
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            State::Fencing {
                step: FenceStep::Verify { .. },
                ..
            } => ": SQL Server is fenced (SECONDARY) and the managed instance has not reported \
                 SQL Server's end of log as hardened yet; resume to keep checking, or cancel to \
                 let SQL Server take writes again"
                .to_owned(),
            State::RemovingLink { redirect, .. } => format!(
                ": the link is kept until a reading shows {}",
                if *redirect {
                    "SQL Server fenced (not PRIMARY) and its end of log hardened on the managed \
                     instance"
                } else {
                    "the managed instance PRIMARY, SQL Server not, and no SQL Server log beyond \
                     what the instance hardened"
                }
            ),
            State::CreatingLinkThroughArc { .. } => ": Arc's createManagedInstanceLink did not \
                 finish, or its answer was lost and the link exists on one side only; read the \
                 Arc operation in the Activity log, then retry, or cancel to remove what it made"
                .to_owned(),
            State::JoiningInstance { .. } => ": the managed instance did not join the link; \
                 check connectivity on port 5022 and 11000-11999 (error 41962) and the \
                 certificates (41973, 41974)"
                .to_owned(),
            State::VerifyingRoles { primary, .. } => format!(
                ": {} did not report the expected roles{}",
                side_name(*primary),
                match &self.last_link {
                    Some(l) => format!(
                        " (last read: SQL Server {:?}, managed instance {:?})",
                        l.source.role, l.instance.role
                    ),
                    None => String::new(),
                }
            ),
            setup!()
            | State::PreparingSource { .. }
            | State::ExchangingTrust { .. }
            | State::CreatingAg { .. }
            | State::CreatingDag
            | steady!()
            | State::PreparingFailover { .. }
            | State::CatchingUp { blocker: None, .. }
            | State::FailingOver { .. }
            | State::ForcingFailover { .. }
            | State::Redirecting { .. }
            | State::SplitBrain
            | State::Repairing { .. }
            | State::Fencing {
                step: FenceStep::Demote { .. } | FenceStep::Undo { .. },
                ..
            }
            | State::DroppingDag { .. }
            | State::DroppingAg
            | backing_out!()
            | terminal!()
            | State::Failed { .. } => String::new(),
        };
        let error = StepError {
            code: "timeout".to_owned(),
            message: format!(
                "{} did not finish within {}{detail}",
                self.state.name(),
                format_duration(limit)
            ),
            retryable: true,
        };
        let step = self.in_flight.first().map(Effect::step);
        let state = std::mem::replace(&mut self.state, State::Draft);
        self.fail(state, step, error)
    }

    pub(super) fn timeout_for(&self, state: &State) -> Option<Duration> {
        let o = &self.spec.options;
        match state {
            setup!() | steady!() | State::SplitBrain | terminal!() | State::Failed { .. } => None,
            State::PreparingSource { .. }
            | State::ExchangingTrust { .. }
            | State::CreatingAg { .. }
            | State::CreatingDag
            | State::Redirecting { .. }
            | State::DroppingDag { .. }
            | State::DroppingAg
            | State::AbortingFailover { .. }
            | State::Cancelling {
                step: CancelStep::DropDag | CancelStep::DropAg,
            } => Some(o.step_timeout),
            State::JoiningInstance { .. }
            | State::CreatingLinkThroughArc { .. }
            | State::RemovingLink { .. }
            | State::Cancelling {
                step: CancelStep::DeleteLink { .. },
            } => Some(o.join_timeout),
            State::Seeding { .. } => Some(o.seeding_timeout),
            catching_up!() => Some(o.catch_up_timeout),
            State::FailingOver { .. }
            | State::ForcingFailover { .. }
            | State::VerifyingRoles { .. }
            | State::Repairing { .. }
            | State::Fencing { .. } => Some(o.failover_timeout),
            State::AwaitingFirstFullBackup { .. } => Some(o.first_backup_timeout),
        }
    }
}
