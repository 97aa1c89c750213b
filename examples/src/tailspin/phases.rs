//! The phase runner: the phases of a run; link, replication, role changes and validation.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use milink_core::LinkSession;
use milink_core::lifecycle::{CutoverOptions, FailoverKind, LinkSpec, Side};
use milink_core::names::DatabaseName;
use milink_core::session::{Operation, SessionStatus};
use milink_core::sim::{DbSnapshot, Sim};
use milink_core::time::Timestamp;

use super::LabSession;
use super::cli::Options;
use super::report::{Report, RoleChangeReport, thousands};
use crate::app::{App, WORKLOAD_TPS};
use crate::narrate::{Narrator, elapsed, side_name};

/// A phase of the lab, in the order [`phases`] lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Readiness,
    Link,
    Replication,
    Failover,
    Validation,
    Failback,
    ValidationBack,
    Cutover,
}

impl Phase {
    /// Its name in the report.
    pub(super) fn name(self) -> &'static str {
        match self {
            Phase::Readiness => "readiness",
            Phase::Link => "link",
            Phase::Replication => "replication",
            Phase::Failover => "failover",
            Phase::Validation => "validation",
            Phase::Failback => "failback",
            Phase::ValidationBack => "validation after failback",
            Phase::Cutover => "cutover",
        }
    }

    /// Its heading in the narration.
    pub(super) fn title(self) -> &'static str {
        match self {
            Phase::Readiness => "Readiness",
            Phase::Link => "Link creation and seeding (the application keeps writing)",
            Phase::Replication => "Replication under the running workload",
            Phase::Failover => "Planned failover to the managed instance",
            Phase::Validation => "Validation: every row committed before the failover",
            Phase::Failback => "Failback to SQL Server",
            Phase::ValidationBack => "Validation: every row written on the managed instance",
            Phase::Cutover => "Cutover: one-way migration, link removed",
        }
    }
}

/// The phases of a run with options `o`.
pub(super) fn phases(o: &Options) -> Vec<Phase> {
    let mut p = vec![Phase::Readiness, Phase::Link, Phase::Replication];
    if o.route_arc {
        // Arc's migration: a planned failover validated, then the cutover (Arc has no failback).
        p.extend([Phase::Failover, Phase::Validation, Phase::Cutover]);
    } else if o.cutover {
        p.extend([Phase::Cutover, Phase::Validation]);
    } else {
        p.extend([Phase::Failover, Phase::Validation]);
        if o.failback {
            p.extend([Phase::Failback, Phase::ValidationBack]);
        }
    }
    p
}

/// A run under way: the simulator, the session over it, the application and the report so far.
pub(super) struct Run {
    /// The simulated world.
    pub(super) sim: Sim,
    /// The link's spec.
    pub(super) spec: LinkSpec,
    /// The linked database.
    pub(super) database: DatabaseName,
    /// Where narration goes.
    pub(super) narrator: Arc<Narrator>,
    /// The session driving the link.
    pub(super) session: LabSession,
    /// The report so far.
    pub(super) report: Report,
    /// The snapshot of the old primary taken when the application stopped for a role change.
    pub(super) before: Option<DbSnapshot>,
    /// The virtual start of the run.
    pub(super) start: Timestamp,
    /// The application.
    pub(super) app: Arc<App>,
    /// On the Arc route: an Arc client to the same Azure (the assessment through Arc).
    pub(super) arc: Option<milink_core::arc::client::ArcSqlServer>,
}

impl Run {
    /// The narrator.
    pub(super) fn n(&self) -> &Narrator {
        &self.narrator
    }

    /// The session's status now.
    pub(super) fn status(&self) -> SessionStatus {
        self.session.status()
    }

    async fn link(&mut self) -> Result<(), Box<dyn Error>> {
        if !self.status().reached(Operation::Start) {
            if self.sim.workload_stats().committed == 0 {
                let side = self.app.start()?;
                self.n().line(&format!(
                    "application running on {}: {WORKLOAD_TPS} transactions/s into {}",
                    side_name(side),
                    self.database
                ));
            }
            self.session.start().await?;
        }
        self.n().drain();
        Ok(())
    }

    async fn replication(&mut self) -> Result<(), Box<dyn Error>> {
        let link = self.spec.link.clone();
        let refused = self
            .sim
            .write(Side::ManagedInstance, &self.database, 1)
            .err()
            .map(|e| e.code())
            .unwrap_or_else(|| "accepted".into());
        self.n().line(&format!(
            "the managed instance is a readable secondary: a write there gives {refused}"
        ));
        for _ in 0..4 {
            self.sim.advance(Duration::from_secs(30));
            let (lag, stats) = self
                .sim
                .with_world(|w| (w.lag(&link, &self.database), w.workload_stats.clone()));
            if let Some(l) = lag {
                self.n().line(&format!(
                    "lag {} ms | {} tx ({} KB) not yet hardened | LSN primary {} secondary {} | {} tx committed",
                    l.lag.as_millis(),
                    l.unshipped_transactions,
                    l.unshipped_bytes.div_ceil(1024),
                    l.primary_lsn,
                    l.secondary_lsn,
                    thousands(stats.committed)
                ));
            }
        }
        Ok(())
    }

    async fn failover(&mut self) -> Result<(), Box<dyn Error>> {
        if !self.status().reached(Operation::Failover) {
            if self.before.is_none() {
                if !self.arc() {
                    self.prepare_role_change().await?;
                }
                self.stop_for_role_change(
                    "the docs say to stop the workload before a planned failover",
                )
                .await;
                self.before = self.sim.snapshot(Side::SqlServer, &self.database);
            }
            self.n().reset_lsn_check();
            self.session.failover(FailoverKind::Planned).await?;
        }
        self.n().drain();
        self.narrate_redirect();
        let status = self.status();
        let (primary, data_loss) = if status.reached(Operation::Failover) {
            (status.primary, status.data_loss_possible)
        } else {
            (Side::SqlServer, false)
        };
        self.n().line(&format!(
            "{} is primary; data loss possible: {}",
            side_name(primary),
            if data_loss {
                "yes"
            } else if !status.loss_unverified.is_empty() {
                "not verified by milink (below)"
            } else {
                "no"
            }
        ));
        let loss_evidence = self.loss_evidence();
        self.report.failover = Some(RoleChangeReport {
            kind: "planned".into(),
            primary: side_name(primary).into(),
            data_loss: data_loss || !loss_evidence.is_empty(),
            lost_transactions: self.sim.lost_transactions(&self.database),
            lsn_check: self.n().lsn_check(),
            loss_evidence,
            write_unavailable_seconds: self
                .app
                .last_write_unavailable()
                .map(super::report::seconds),
            role_change_seconds: self.role_change_seconds(),
            accepts_writes_seconds: self.accepts_writes_seconds(),
        });
        Ok(())
    }

    async fn validation(&mut self) -> Result<(), Box<dyn Error>> {
        let p = self.parity(
            "SQL Server at the role change vs the managed instance",
            Side::ManagedInstance,
        );
        self.report.parity.push(p);
        let status = self.status();
        if status.reached(Operation::Failover) || status.reached(Operation::Cutover) {
            // The application followed the redirect: it writes to the managed instance, and SQL
            // Server refuses writes.
            self.writes_after_redirect(Side::SqlServer);
        }
        if self.status().reached(Operation::Failover) {
            let link = self.spec.link.clone();
            if let Some(l) = self.sim.with_world(|w| w.lag(&link, &self.database)) {
                self.n().line(&format!(
                    "replication runs back to SQL Server: lag {} ms, {} tx not yet hardened",
                    l.lag.as_millis(),
                    l.unshipped_transactions
                ));
            }
        }
        Ok(())
    }

    async fn failback(&mut self) -> Result<(), Box<dyn Error>> {
        if !self.status().reached(Operation::Failback) {
            if self
                .before
                .as_ref()
                .is_none_or(|b| b.side != Side::ManagedInstance)
            {
                self.prepare_role_change().await?;
                self.stop_for_role_change("before failing back").await;
                self.before = self.sim.snapshot(Side::ManagedInstance, &self.database);
            }
            self.n().reset_lsn_check();
            self.session.failback().await?;
        }
        self.n().drain();
        self.narrate_redirect();
        let loss_evidence = self.loss_evidence();
        self.report.failback = Some(RoleChangeReport {
            kind: "failback".into(),
            primary: side_name(Side::SqlServer).into(),
            data_loss: !loss_evidence.is_empty(),
            lost_transactions: self.sim.lost_transactions(&self.database),
            lsn_check: self.n().lsn_check(),
            loss_evidence,
            write_unavailable_seconds: self
                .app
                .last_write_unavailable()
                .map(super::report::seconds),
            role_change_seconds: self.role_change_seconds(),
            accepts_writes_seconds: self.accepts_writes_seconds(),
        });
        Ok(())
    }

    async fn validation_back(&mut self) -> Result<(), Box<dyn Error>> {
        let p = self.parity(
            "the managed instance at failback vs SQL Server",
            Side::SqlServer,
        );
        self.report.parity.push(p);
        if self.status().reached(Operation::Failback) {
            self.writes_after_redirect(Side::ManagedInstance);
        }
        Ok(())
    }

    async fn cutover(&mut self) -> Result<(), Box<dyn Error>> {
        let redirected_before = self.session.status().redirect.map(|r| r.redirect_id);
        if !self.status().reached(Operation::Cutover) {
            if self.before.is_none() {
                self.prepare_role_change().await?;
                self.stop_for_role_change("the application moves to the managed instance")
                    .await;
                self.before = self.sim.snapshot(Side::SqlServer, &self.database);
            }
            self.n().reset_lsn_check();
            // Arc's deleteMiLink leaves SQL Server's availability group, and Arc cannot drop it.
            self.session
                .cutover(CutoverOptions {
                    drop_availability_group: !self.arc(),
                })
                .await?;
        }
        self.n().drain();
        // A cutover after a failover redirects nothing new: the application already uses the
        // managed instance.
        if self.session.status().redirect.map(|r| r.redirect_id) != redirected_before {
            self.narrate_redirect();
        }
        let link = self.spec.link.clone();
        let (backup, dags, ags, mi_link) = self.sim.with_world(|w| {
            (
                w.latest_full_backup(&self.database),
                w.source.dags.len(),
                w.source.ags.len(),
                w.instance.links.contains_key(&link),
            )
        });
        if let Some(b) = backup {
            self.n().line(&format!(
                "first full backup on the managed instance finished at {}",
                elapsed(self.start, b)
            ));
        }
        self.n().line(&format!(
            "link on the managed instance: {}; DAG on SQL Server: {}; AG on SQL Server: {}",
            if mi_link { "present" } else { "removed" },
            if dags == 0 { "dropped" } else { "present" },
            if ags == 0 { "dropped" } else { "present" }
        ));
        let loss_evidence = self.loss_evidence();
        if self.arc() && self.report.failover.is_some() {
            // The Arc story's cutover follows its failover, which the report keeps.
            return Ok(());
        }
        self.report.failover = Some(RoleChangeReport {
            kind: "cutover".into(),
            primary: side_name(Side::ManagedInstance).into(),
            data_loss: !loss_evidence.is_empty(),
            lost_transactions: self.sim.lost_transactions(&self.database),
            lsn_check: self.n().lsn_check(),
            loss_evidence,
            write_unavailable_seconds: self
                .app
                .last_write_unavailable()
                .map(super::report::seconds),
            role_change_seconds: self.role_change_seconds(),
            accepts_writes_seconds: self.accepts_writes_seconds(),
        });
        Ok(())
    }

    /// Whether the link runs on the Arc route.
    pub(super) fn arc(&self) -> bool {
        self.spec.route.is_arc()
    }

    /// Switches the link to synchronous commit while the application still writes, so that
    /// once it stops only the catch-up gate stands before the role change.
    async fn prepare_role_change(&mut self) -> Result<(), Box<dyn Error>> {
        self.session.prepare().await?;
        self.n().drain();
        self.n()
            .line("link prepared: both sides in synchronous commit while the application writes");
        Ok(())
    }

    /// Runs phase `p`.
    pub(super) async fn phase(&mut self, p: Phase) -> Result<(), Box<dyn Error>> {
        match p {
            Phase::Readiness => self.readiness().await,
            Phase::Link => self.link().await,
            Phase::Replication => self.replication().await,
            Phase::Failover => self.failover().await,
            Phase::Validation => self.validation().await,
            Phase::Failback => self.failback().await,
            Phase::ValidationBack => self.validation_back().await,
            Phase::Cutover => self.cutover().await,
        }
    }
}
