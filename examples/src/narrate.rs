//! Narration: port decorators that print what the session does as it does it, stamped with
//! virtual time, plus the session's and the simulator's notable events in between.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use milink_core::SessionEvent;
use milink_core::lifecycle::{
    FullBackup, InstanceOp, LinkName, OperationRef, Phase, ProgressEvent, Side, SideView, SourceOp,
};
use milink_core::names::{DatabaseName, InstanceId, Lsn};
use milink_core::ports::{
    ArmReply, ManagedInstance, PollReply, PortError, SourceReply, SourceServer,
};
use milink_core::redirect::WorkloadActivity;
use milink_core::sim::{EventKind, Sim};
use milink_core::time::Timestamp;
use tokio::sync::broadcast;

use crate::app::lock;
use crate::plan;

/// `+HH:MM:SS` of virtual time since `start`.
pub fn elapsed(start: Timestamp, now: Timestamp) -> String {
    let s = now.since(start).as_secs();
    format!("+{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// The LSNs both sides reported while catching up before a role change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LsnCheck {
    /// SQL Server's `last_hardened_lsn` (a decimal string in JSON, like the REST API's).
    pub sql_server: Lsn,
    /// The managed instance's `last_hardened_lsn`.
    pub managed_instance: Lsn,
    /// How long they had been equal and unchanged, in seconds.
    pub stable_seconds: u64,
}

#[derive(Default)]
struct Watch {
    /// The phase the session last reported entering.
    phase: Option<Phase>,
    seeding: Option<u8>,
    lsn_database: Option<DatabaseName>,
    lsn_check: Option<LsnCheck>,
    printed_ops: BTreeSet<String>,
    sim_events: usize,
    pending_arm: Option<(String, Timestamp)>,
}

/// Where narration goes, and what it has seen.
pub struct Narrator {
    out: Mutex<Box<dyn Write + Send>>,
    sim: Sim,
    start: Timestamp,
    instance: InstanceId,
    link: LinkName,
    events: Mutex<Option<broadcast::Receiver<SessionEvent>>>,
    watch: Mutex<Watch>,
}

impl Narrator {
    /// Narration of `sim` to `out`, in virtual time since `start`.
    pub fn new(
        out: Box<dyn Write + Send>,
        sim: Sim,
        start: Timestamp,
        instance: InstanceId,
        link: LinkName,
    ) -> Arc<Narrator> {
        let seen = sim.events().len();
        Arc::new(Narrator {
            out: Mutex::new(out),
            sim,
            start,
            instance,
            link,
            events: Mutex::new(None),
            watch: Mutex::new(Watch {
                sim_events: seen,
                ..Watch::default()
            }),
        })
    }

    /// Follows a session's events from now on.
    pub fn follow(&self, events: broadcast::Receiver<SessionEvent>) {
        *lock(&self.events) = Some(events);
    }

    /// Writes a line as is.
    pub fn raw(&self, text: &str) {
        let mut out = lock(&self.out);
        // Narration is best effort: a closed stdout must not fail the run.
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    /// Writes a line stamped with the virtual time.
    pub fn line(&self, text: &str) {
        let stamp = elapsed(self.start, self.sim.now());
        self.raw(&format!("  {stamp}  {text}"));
    }

    /// The last LSN check seen, if any.
    pub fn lsn_check(&self) -> Option<LsnCheck> {
        lock(&self.watch).lsn_check
    }

    /// Forgets the last LSN check (before the next role change).
    pub fn reset_lsn_check(&self) {
        let mut w = lock(&self.watch);
        w.lsn_check = None;
        w.lsn_database = None;
    }

    /// Prints the session's and the simulator's events that happened since the last call.
    pub fn drain(&self) {
        let mut session_events = Vec::new();
        if let Some(rx) = lock(&self.events).as_mut() {
            loop {
                match rx.try_recv() {
                    Ok(e) => session_events.push(e),
                    Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                    Err(_) => break,
                }
            }
        }
        let sim_events = {
            let from = lock(&self.watch).sim_events;
            let all = self.sim.events();
            lock(&self.watch).sim_events = all.len();
            all.into_iter().skip(from).collect::<Vec<_>>()
        };
        for e in sim_events {
            let text = match &e.kind {
                EventKind::Disconnected { reason, .. } => {
                    Some(format!("link disconnected: {reason}"))
                }
                EventKind::Connected { .. } => Some("link connected".to_string()),
                EventKind::SeedingStarted { attempt, database } if *attempt > 1 => Some(format!(
                    "seeding {database} restarted from 0% (attempt {attempt})"
                )),
                EventKind::SeedingInterrupted { database, percent } => {
                    Some(format!("seeding {database} interrupted at {percent}%"))
                }
                EventKind::SeedingFailed { database, code } => {
                    Some(format!("seeding {database} failed with error {code}"))
                }
                EventKind::FullBackup { database } => Some(format!(
                    "managed instance: automatic full backup of {database} finished"
                )),
                EventKind::Fault { description } => Some(format!("fault injected: {description}")),
                EventKind::NetworkHealed => Some("network healed".to_string()),
                EventKind::TransactionsLost {
                    database,
                    transactions,
                    rows,
                } => Some(format!(
                    "{database}: {transactions} transactions ({rows} rows) were never shipped and are lost"
                )),
                EventKind::TransactionsReverted {
                    database,
                    transactions,
                    ..
                } => Some(format!(
                    "{database}: the old primary reverted {transactions} transactions it alone had"
                )),
                _ => None,
            };
            if let Some(t) = text {
                let stamp = elapsed(self.start, e.at);
                self.raw(&format!("  {stamp}  {t}"));
            }
        }
        for e in session_events {
            match e {
                SessionEvent::StateChanged { to, .. } => self.line(&format!("state -> {to}")),
                SessionEvent::StepRetrying {
                    code,
                    wait,
                    attempt,
                    ..
                } => self.line(&format!(
                    "retrying after {code} (attempt {attempt}, waiting {:.0} s)",
                    wait.as_secs_f64()
                )),
                SessionEvent::StepFinished {
                    action,
                    error: Some(error),
                    ..
                } => self.line(&format!(
                    "{action} failed: {}: {}",
                    error.code, error.message
                )),
                SessionEvent::Progress(ProgressEvent::CatchUp {
                    database,
                    sql_server: Some(sql_server),
                    managed_instance: Some(managed_instance),
                    equal_for,
                }) => self.note_catch_up(database, sql_server, managed_instance, equal_for),
                SessionEvent::Progress(ProgressEvent::Phase { name }) => {
                    lock(&self.watch).phase = Some(name);
                }
                SessionEvent::Progress(ProgressEvent::Seeding { database, percent }) => {
                    let mut w = lock(&self.watch);
                    let show = w.seeding.is_none_or(|last| percent / 10 > last / 10)
                        || (percent == 100 && w.seeding != Some(100));
                    if show {
                        w.seeding = Some(percent);
                        drop(w);
                        self.line(&format!("seeding {database} {percent:>3}%"));
                    }
                }
                _ => {}
            }
        }
    }

    fn phase(&self) -> Option<Phase> {
        lock(&self.watch).phase
    }

    fn first_time(&self, key: String) -> bool {
        lock(&self.watch).printed_ops.insert(key)
    }

    /// The machine's catch-up gate read both sides' LSNs (the first database of the link).
    fn note_catch_up(
        &self,
        database: DatabaseName,
        sql_server: Lsn,
        managed_instance: Lsn,
        equal_for: Option<std::time::Duration>,
    ) {
        let mut w = lock(&self.watch);
        if w.lsn_database.get_or_insert_with(|| database.clone()) != &database {
            return;
        }
        let check = LsnCheck {
            sql_server,
            managed_instance,
            stable_seconds: equal_for.map_or(0, |d| d.as_secs()),
        };
        // Printed when the values change and every 10 s while they hold.
        let changed = w.lsn_check.is_none_or(|c| {
            c.sql_server != check.sql_server
                || c.managed_instance != check.managed_instance
                || check.stable_seconds / 10 > c.stable_seconds / 10
        });
        w.lsn_check = Some(check);
        drop(w);
        if changed {
            let (sl, ml) = (sql_server.value(), managed_instance.value());
            let verdict = if sl == ml {
                format!("equal, unchanged for {} s", check.stable_seconds)
            } else {
                format!("SQL Server ahead by {}", sl.saturating_sub(ml))
            };
            self.line(&format!(
                "LSN check: SQL Server last_hardened_lsn {sl} | managed instance {ml} | {verdict}"
            ));
        }
    }
}

/// A port wrapped with narration.
pub struct Narrated<P> {
    inner: P,
    narrator: Arc<Narrator>,
}

impl<P> Narrated<P> {
    /// Wraps `inner`.
    pub fn new(inner: P, narrator: Arc<Narrator>) -> Self {
        Narrated { inner, narrator }
    }
}

fn outcome<T>(r: &Result<T, PortError>) -> String {
    match r {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("FAILED {}", e.code()),
    }
}

#[async_trait]
impl<S: SourceServer> SourceServer for Narrated<S> {
    async fn execute(&self, op: &SourceOp) -> Result<SourceReply, PortError> {
        let n = &self.narrator;
        n.drain();
        let batches = plan::source_batches(op);
        let what = batches
            .first()
            .map_or_else(|| format!("{op:?}"), |b| b.purpose().to_string());
        let r = self.inner.execute(op).await;
        n.line(&format!("sql  {what}: {}", outcome(&r)));
        r
    }

    async fn link_state(
        &self,
        link: &LinkName,
        databases: &[DatabaseName],
    ) -> Result<SideView, PortError> {
        self.narrator.drain();
        self.inner.link_state(link, databases).await
    }

    async fn workload_activity(
        &self,
        databases: &[DatabaseName],
    ) -> Result<WorkloadActivity, PortError> {
        self.inner.workload_activity(databases).await
    }

    async fn arc_begin(&self, op: &milink_core::arc::ArcOp) -> Result<ArmReply, PortError> {
        let n = &self.narrator;
        n.drain();
        let r = self.inner.arc_begin(op).await;
        let shown = match &r {
            Ok(ArmReply::Accepted(_)) => "accepted, polled by its URL".to_owned(),
            Ok(ArmReply::Completed | ArmReply::PublicKey(_)) => "done".to_owned(),
            Err(e) => e.to_string(),
        };
        n.line(&format!("arc  {}: {shown}", op.operation_id()));
        r
    }

    async fn arc_poll(
        &self,
        op: &milink_core::arc::ArcOp,
        operation: &OperationRef,
    ) -> Result<PollReply, PortError> {
        let r = self.inner.arc_poll(op, operation).await;
        if !matches!(r, Ok(PollReply::Running { .. })) {
            let n = &self.narrator;
            n.drain();
            let shown = match &r {
                Ok(_) => "succeeded".to_owned(),
                Err(e) => e.to_string(),
            };
            n.line(&format!("arc  {} ended: {shown}", op.operation_id()));
        }
        r
    }

    fn connection_warnings(&self) -> Vec<String> {
        self.inner.connection_warnings()
    }
}

#[async_trait]
impl<M: ManagedInstance> ManagedInstance for Narrated<M> {
    async fn begin(&self, op: &InstanceOp) -> Result<ArmReply, PortError> {
        let n = &self.narrator;
        n.drain();
        let req = plan::arm_request(op, &n.instance);
        let short = req
            .url
            .split_once("/providers/Microsoft.Sql/managedInstances/")
            .map_or(req.url.as_str(), |(_, rest)| rest)
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string();
        let r = self.inner.begin(op).await;
        let what = format!("{} {short}", req.method);
        match &r {
            Ok(ArmReply::Accepted(_)) => {
                n.line(&format!("arm  {what}: 202 Accepted, polling the operation"));
                lock(&n.watch).pending_arm = Some((what, n.sim.now()));
            }
            Ok(ArmReply::Completed) => n.line(&format!("arm  {what}: done")),
            Ok(ArmReply::PublicKey(k)) => {
                n.line(&format!("arm  {what}: certificate ({} bytes)", k.len()))
            }
            Err(e) => n.line(&format!("arm  {what}: {}", e.code())),
        }
        r
    }

    async fn poll(&self, operation: &OperationRef) -> Result<PollReply, PortError> {
        let n = &self.narrator;
        n.drain();
        let r = self.inner.poll(operation).await;
        let finished = !matches!(r, Ok(PollReply::Running { .. }));
        if finished && let Some((what, since)) = lock(&n.watch).pending_arm.take() {
            let took = n.sim.now().since(since).as_secs();
            n.line(&format!(
                "arm  {what}: {} after {}m{:02}s",
                if r.is_ok() { "succeeded" } else { "failed" },
                took / 60,
                took % 60
            ));
        }
        r
    }

    async fn link_state(&self, link: &LinkName) -> Result<SideView, PortError> {
        self.narrator.drain();
        self.inner.link_state(link).await
    }

    async fn link_state_live(&self, link: &LinkName) -> Result<SideView, PortError> {
        self.narrator.drain();
        self.inner.link_state_live(link).await
    }

    async fn full_backups(&self, databases: &[DatabaseName]) -> Result<Vec<FullBackup>, PortError> {
        let n = &self.narrator;
        n.drain();
        let r = self.inner.full_backups(databases).await;
        if n.phase() == Some(Phase::AwaitingFirstFullBackup)
            && n.first_time(format!("backups-wait-{}", n.link))
        {
            n.line("waiting for the managed instance's first full backup after the role change");
        }
        r
    }

    async fn workload_activity(
        &self,
        databases: &[DatabaseName],
    ) -> Result<WorkloadActivity, PortError> {
        self.inner.workload_activity(databases).await
    }

    async fn instance_fqdn(&self) -> Result<Option<milink_core::names::MiFqdn>, PortError> {
        self.inner.instance_fqdn().await
    }
}

/// Shortens long `0x…` literals: in a plan the certificate bytes come from the other side at
/// run time, so only their start is worth showing.
pub fn shorten_blobs(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(i) = rest.find("0x") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 2..];
        let len = tail
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(tail.len());
        if len == 0 {
            out.push_str("0x /* certificate bytes from the adapter's configuration */");
        } else if len > 32 {
            out.push_str(&format!("0x{}… /* {} bytes */", &tail[..16], len / 2));
        } else {
            out.push_str(&rest[i..i + 2 + len]);
        }
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// Which side a name refers to, for display.
pub fn side_name(side: Side) -> &'static str {
    match side {
        Side::SqlServer => "SQL Server",
        Side::ManagedInstance => "managed instance",
    }
}
