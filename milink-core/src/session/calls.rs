//! The session's way out: each effect performed through the ports, with the call timeout,
//! retries of transient errors and busy answers, and the redirect hook.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use super::{Session, SessionEvent, lock};
use crate::lifecycle::LinkSpec;
use crate::lifecycle::{
    Command, Effect, Input, LinkObservation, Observation, Operation, Probe, Side, StepError, StepId,
};
use crate::ports::{
    ArmReply, Journal, ManagedInstance, PollReply, PortError, SourceReply, SourceServer,
};
use crate::redirect::RedirectTarget;
use crate::retry::{Retryable, retry_notify_until};

/// The code of a redirect refused because the spec's instance FQDN is not the instance's.
pub const SPEC_MISMATCH: &str = "spec_mismatch";

impl<S, M, J> Session<S, M, J>
where
    S: SourceServer + 'static,
    M: ManagedInstance + 'static,
    J: Journal + 'static,
{
    /// Before the workload is sent to the managed instance: the spec's FQDN (which came from a
    /// journal when the session was resumed) must be the instance's as the service reports it
    /// now, or the redirect is refused and nothing is sent, so an edited journal cannot hand
    /// the workload's credentials to another host. A port that cannot tell skips the check; a
    /// reading that fails is retried like any failed call.
    async fn check_instance_fqdn(&self, spec: &LinkSpec) -> Result<(), PortError> {
        let Some(live) = self.instance.instance_fqdn().await? else {
            return Ok(());
        };
        let expected = &spec.target.fqdn;
        if live.as_str().eq_ignore_ascii_case(expected.as_str()) {
            return Ok(());
        }
        Err(PortError::permanent(
            SPEC_MISMATCH,
            format!(
                "the link's spec names the managed instance {expected}, but {} reports its \
                 FQDN as {live}; the workload was not redirected. The journal or the spec was \
                 changed: check it against the instance before resuming",
                spec.target.instance
            ),
        ))
    }

    /// Answers a `Redirect` effect (see [`Self::with_redirect`]).
    pub(super) async fn redirect(&self, primary: Side) -> Result<Observation, PortError> {
        let (spec, redirect_id) = {
            let core = lock(&self.core);
            let spec = core.engine.machine().spec().clone();
            // The machine counts a redirect before it issues one; the fallback never shows.
            let id = core
                .engine
                .machine()
                .redirect_id()
                .unwrap_or_else(|| format!("{}/redirect/0", spec.link));
            (spec, id)
        };
        if primary == Side::ManagedInstance {
            self.check_instance_fqdn(&spec).await?;
        }
        let target = RedirectTarget::for_primary(&spec, primary, &self.redirect_options)
            .map(|target| target.with_redirect_id(redirect_id));
        let Some(hook) = &self.redirect else {
            if let Ok(target) = target {
                lock(&self.core).last_redirect = Some(target);
            }
            return Ok(Observation::Done);
        };
        let target = target.map_err(|e| {
            PortError::permanent(
                "redirect",
                format!("cannot compute where the workload must connect: {e}"),
            )
        })?;
        lock(&self.core).last_redirect = Some(target.clone());
        tracing::info!(link = %self.link, target = %target, redirect_id = %target.redirect_id, "redirecting the workload");
        let called = self
            .bounded(async {
                hook.redirect(&target)
                    .await
                    .map_err(|e| PortError::transient("hook", e.scrubbed(&target).message()))
            })
            .await;
        called.map(|()| Observation::Done).map_err(|e| {
            PortError::transient(
                "hook",
                format!(
                    "the redirect hook failed for {target}: {}; the link is intact: fix the \
                     hook and resume",
                    target.scrub(&e.message)
                ),
            )
        })
    }

    /// Performs one effect through the ports.
    pub(super) async fn perform(
        &self,
        step: StepId,
        effect: &Effect,
    ) -> Result<Observation, StepError> {
        let result = match effect {
            Effect::Source { op, .. } => self
                .call(step, op.is_role_change(), || self.source.execute(op))
                .await
                .map(|reply| match reply {
                    SourceReply::Done => Observation::Done,
                    SourceReply::PublicKey(der) => Observation::PublicKey(der),
                }),
            Effect::Instance { op, .. } => self
                .call(step, op.is_role_change(), || self.instance.begin(op))
                .await
                .map(|reply| match reply {
                    ArmReply::Completed => Observation::Done,
                    ArmReply::PublicKey(der) => Observation::PublicKey(der),
                    ArmReply::Accepted(operation) => Observation::OperationAccepted(operation),
                }),
            Effect::PollOperation { operation, .. } => self
                .call(step, false, || self.instance.poll(operation))
                .await
                .map(|reply| match reply {
                    PollReply::Running {
                        retry_after: Some(after),
                    } => Observation::OperationRunningRetryAfter(after),
                    PollReply::Running { retry_after: None } => Observation::OperationRunning,
                    PollReply::Succeeded => Observation::Done,
                }),
            Effect::Arc { op, .. } => {
                let spec = lock(&self.core).engine.machine().spec().clone();
                match crate::arc::route::link_op(&spec, op) {
                    // Never re-sent by the driver: the machine reads the link first.
                    Ok(arc) => self
                        .call(step, true, || self.source.arc_begin(&arc))
                        .await
                        .map(|reply| match reply {
                            ArmReply::Accepted(operation) => {
                                Observation::OperationAccepted(operation)
                            }
                            ArmReply::Completed | ArmReply::PublicKey(_) => Observation::Done,
                        }),
                    Err(refused) => Err(refused),
                }
            }
            Effect::PollArc { op, operation, .. } => {
                let spec = lock(&self.core).engine.machine().spec().clone();
                match crate::arc::route::link_op(&spec, op) {
                    Ok(arc) => self
                        .call(step, false, || self.source.arc_poll(&arc, operation))
                        .await
                        .map(|reply| match reply {
                            PollReply::Running {
                                retry_after: Some(after),
                            } => Observation::OperationRunningRetryAfter(after),
                            PollReply::Running { retry_after: None } => {
                                Observation::OperationRunning
                            }
                            PollReply::Succeeded => Observation::Done,
                        }),
                    Err(refused) => Err(refused),
                }
            }
            Effect::Probe {
                probe: Probe::Link, ..
            } => self.probe_link(step, false).await.map(Observation::Link),
            Effect::Probe {
                probe: Probe::LinkLive,
                ..
            } => self.probe_link(step, true).await.map(Observation::Link),
            Effect::Probe {
                probe: Probe::FirstFullBackups,
                ..
            } => {
                let databases = lock(&self.core).engine.machine().link_databases();
                self.call(step, false, || self.instance.full_backups(&databases))
                    .await
                    .map(Observation::FullBackups)
            }
            Effect::Probe {
                probe: Probe::Workload { side },
                ..
            } => {
                let databases = lock(&self.core).engine.machine().link_databases();
                match side {
                    Side::SqlServer => {
                        self.call(step, false, || self.source.workload_activity(&databases))
                            .await
                    }
                    Side::ManagedInstance => {
                        self.call(step, false, || self.instance.workload_activity(&databases))
                            .await
                    }
                }
                .map(Observation::Workload)
            }
            Effect::Redirect { primary, .. } => self.redirect(*primary).await,
        };
        result.map_err(|e| StepError {
            code: e.code(),
            message: e.message,
            retryable: e.transient,
        })
    }

    /// Reads SQL Server's side alone (one T-SQL round trip) and tells whether it differs from
    /// the machine's last whole reading in anything but LSNs, queues and progress; a failed
    /// reading, or no earlier one, counts as a change (the whole reading that follows goes
    /// through the machine, which judges it).
    pub(super) async fn sql_server_changed(&self) -> bool {
        let (databases, last) = {
            let core = lock(&self.core);
            let machine = core.engine.machine();
            (
                machine.spec().databases.clone(),
                machine.health().map(|l| l.source.clone()),
            )
        };
        let Some(last) = last else { return true };
        match self
            .call(StepId(0), false, || {
                self.source.link_state(&self.link, &databases)
            })
            .await
        {
            Ok(now) => !same_shape(&last, &now),
            Err(_) => true,
        }
    }

    /// Both sides' view of the link, read concurrently; `live`: the managed instance from its
    /// DMVs alone ([`ManagedInstance::link_state_live`](crate::ports::ManagedInstance::link_state_live)).
    pub(super) async fn probe_link(
        &self,
        step: StepId,
        live: bool,
    ) -> Result<LinkObservation, PortError> {
        let databases = lock(&self.core).engine.machine().spec().databases.clone();
        let (source, instance) = tokio::join!(
            self.call(step, false, || self
                .source
                .link_state(&self.link, &databases)),
            self.call(step, false, || async {
                if live {
                    self.instance.link_state_live(&self.link).await
                } else {
                    self.instance.link_state(&self.link).await
                }
            }),
        );
        // One side failing transiently still yields a reading: its view is empty and marked
        // unreachable, so the machine can finish a forced failover while the old primary is down
        // and never mistakes "could not read" for "absent". Anything else fails the probe.
        match (source, instance) {
            (Ok(source), Ok(instance)) => Ok(LinkObservation {
                source,
                instance,
                unreachable: None,
            }),
            (Err(e), Ok(instance)) if e.transient => Ok(LinkObservation {
                source: crate::lifecycle::SideView::unknown(),
                instance,
                unreachable: Some(Side::SqlServer),
            }),
            (Ok(source), Err(e)) if e.transient => Ok(LinkObservation {
                source,
                instance: crate::lifecycle::SideView::unknown(),
                unreachable: Some(Side::ManagedInstance),
            }),
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    }

    /// One port call with the call timeout and, unless it changes a role, retries.
    pub(super) async fn call<'a, T, F, Fut>(
        &'a self,
        step: StepId,
        role_change: bool,
        mut op: F,
    ) -> Result<T, PortError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, PortError>> + 'a,
    {
        let mut rng = lock(&self.rng).fork();
        // Busy answers are waited out no longer than the step may take.
        let step_timeout = lock(&self.core).engine.machine().phase_timeout();
        retry_notify_until(
            &self.options.retry,
            self.timer.as_ref(),
            &mut rng,
            step_timeout,
            |_| {
                let call = op();
                async move {
                    self.bounded(call).await.map_err(|error| AttemptError {
                        // A role change is retried only when the remote side refused the
                        // request outright; anything else may have changed the role already.
                        retry: !role_change || error.is_throttled(),
                        error,
                    })
                }
            },
            |attempt, failed: &AttemptError, wait| {
                self.emit(SessionEvent::StepRetrying {
                    step,
                    attempt,
                    code: failed.error.code(),
                    wait,
                });
                tracing::info!(link = %self.link, step = step.0, attempt, code = %failed.error.kind, ?wait, "retrying");
            },
        )
        .await
        .map_err(|failed| failed.error)
    }

    pub(super) async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, PortError>>,
    ) -> Result<T, PortError> {
        let limit = self.options.call_timeout;
        let deadline = self.timer.now().plus(limit);
        tokio::select! {
            biased;
            result = call => result,
            () = self.timer.sleep_until(deadline) => Err(PortError::transient(
                "timeout",
                format!("no answer within {limit:?}; the call may or may not have taken effect"),
            )),
        }
    }
}

/// A failed attempt, and whether the driver may retry it.
struct AttemptError {
    error: PortError,
    retry: bool,
}

impl Retryable for AttemptError {
    fn is_transient(&self) -> bool {
        self.retry && self.error.transient
    }
    fn retry_after(&self) -> Option<Duration> {
        self.error.retry_after
    }
    fn is_busy(&self) -> bool {
        self.error.is_busy()
    }
}

/// The name of a serialized enum's variant (`"EnsureMasterKey"`, `"PutLink"`), without its data.
pub(super) fn variant_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        Ok(serde_json::Value::Object(map)) => map.keys().next().cloned().unwrap_or_default(),
        _ => String::from("?"),
    }
}

/// A short label of an input for traces and refusals: the operation a command starts
/// (`retry`, `refresh`), `observation`, `tick` or `resume`.
pub(super) fn label(input: &Input) -> &'static str {
    match input {
        Input::Command(Command::Refresh) => "refresh",
        Input::Command(c) => Operation::of(c).map_or("retry", Operation::name),
        Input::Observed { .. } => "observation",
        Input::Tick => "tick",
        Input::Resume => "resume",
    }
}

/// A short label of an effect for events and traces: what it does, never its data.
pub fn action(effect: &Effect) -> String {
    match effect {
        Effect::Source { op, .. } => format!("sql:{}", variant_name(op)),
        Effect::Instance { op, .. } => format!("arm:{}", variant_name(op)),
        Effect::PollOperation { .. } => "arm:poll".into(),
        Effect::Arc { op, .. } => format!("arc:{}", variant_name(op)),
        Effect::PollArc { .. } => "arc:poll".into(),
        Effect::Probe {
            probe: Probe::Link, ..
        } => "probe:link".into(),
        Effect::Probe {
            probe: Probe::LinkLive,
            ..
        } => "probe:link_live".into(),
        Effect::Probe {
            probe: Probe::FirstFullBackups,
            ..
        } => "probe:full_backups".into(),
        Effect::Probe {
            probe: Probe::Workload { .. },
            ..
        } => "probe:workload".into(),
        Effect::Redirect { primary, .. } => format!("redirect:{}", variant_name(primary)),
    }
}

/// Whether two readings of one side agree in everything a steady link's state depends on:
/// existence, roles, modes, connection, version, failover mode and, per database, its
/// synchronization state, health, the partner's state, errors and replica state. LSNs, queues,
/// lag and seeding progress move with every commit and are left out.
pub(super) fn same_shape(a: &crate::lifecycle::SideView, b: &crate::lifecycle::SideView) -> bool {
    a.exists == b.exists
        && a.role == b.role
        && a.mode == b.mode
        && a.partner_mode == b.partner_mode
        && a.connected == b.connected
        && a.version == b.version
        && a.failover_mode == b.failover_mode
        && a.databases.len() == b.databases.len()
        && a.databases.iter().zip(&b.databases).all(|(x, y)| {
            x.name == y.name
                && x.sync_state == y.sync_state
                && x.health == y.health
                && x.partner.as_ref().map(|p| p.sync_state)
                    == y.partner.as_ref().map(|p| p.sync_state)
                && x.last_error == y.last_error
                && x.replica_state == y.replica_state
        })
}
