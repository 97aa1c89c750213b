//! Around a role change: the quiet check, the redirect, writes after it, data loss and parity.

use std::sync::Arc;
use std::time::Duration;

use milink_core::LinkSession;
use milink_core::lifecycle::Side;
use milink_core::sim::ParityReport;

use super::phases::Run;
use super::report::{ParityOut, TableReport, thousands};

impl Run {
    /// The machine's data-loss evidence so far, one line each, and printed loudly.
    pub(super) fn loss_evidence(&mut self) -> Vec<String> {
        let status = self.status();
        let lines: Vec<String> = status
            .data_loss
            .iter()
            .map(ToString::to_string)
            .chain(
                status
                    .loss_unverified
                    .iter()
                    .map(|note| format!("NOT VERIFIED: {note}")),
            )
            .collect();
        for line in &lines {
            self.n().line(&format!("!!! {line}"));
        }
        lines
    }

    /// The service's own latency for the last role change (L), in seconds of virtual time.
    pub(super) fn role_change_seconds(&self) -> Option<f64> {
        self.sim
            .last_role_change()
            .map(|(asked, done)| super::report::seconds(done.since(asked)))
    }

    /// From the moment the application was told to stop to the moment the new primary took
    /// the role (and accepts writes), in seconds of virtual time.
    pub(super) fn accepts_writes_seconds(&self) -> Option<f64> {
        let stopped = self.app.last_stopped_at()?;
        let (_, done) = self.sim.last_role_change()?;
        (done >= stopped).then(|| super::report::seconds(done.since(stopped)))
    }

    /// Pauses the application and says how far it got.
    fn stop_workload(&self, why: &str) {
        let stats = self.app.pause();
        self.n().line(&format!(
            "application stopped ({why}): {} transactions, {} rows committed so far",
            thousands(stats.committed),
            thousands(stats.rows)
        ));
    }

    /// Asks the current primary who is still connected to the link's databases.
    /// Whether the check could read the sessions.
    async fn quiet_check(&self) -> bool {
        match self.session.check_workload_quiet().await {
            Ok(activity) => {
                for (i, line) in activity.summary().lines().enumerate() {
                    let line = line.trim_start();
                    self.n().line(&if i == 0 {
                        format!("quiet check: {line}")
                    } else {
                        format!("  {line}")
                    });
                }
                true
            }
            Err(e) => {
                self.n().line(&format!("quiet check unavailable: {e}"));
                false
            }
        }
    }

    /// Stops the application the way the failover procedures ask, showing the check before and
    /// after.
    pub(super) async fn stop_for_role_change(&self, why: &str) {
        let readable = self.quiet_check().await;
        self.stop_workload(why);
        if readable {
            self.quiet_check().await;
        }
    }

    /// Tells where the session redirected the application.
    pub(super) fn narrate_redirect(&self) {
        let Some(target) = self.session.status().redirect else {
            return;
        };
        self.n().line(&format!(
            "redirect hook (run once the new primary took writes, before anything was dropped): \
             the application now uses the {target}"
        ));
        self.n()
            .line(&format!("  connection string {}", target.connection_string));
        for note in &target.notes {
            self.n().line(&format!("  note: {note}"));
        }
    }

    /// The application keeps writing for a minute; a client still on the old connection
    /// string tries the old primary.
    pub(super) fn writes_after_redirect(&self, old: Side) {
        self.sim.advance(Duration::from_secs(60));
        let state = self.app.state();
        if let Some(leg) = state.ledger.legs.last() {
            let now = self.sim.workload_stats();
            let since = state
                .ledger
                .leg_started
                .as_ref()
                .map_or(0, |s| now.committed.saturating_sub(s.committed));
            self.n().line(&format!(
                "application writes to the {} ({}): {} transactions since the redirect",
                leg.side,
                leg.server,
                thousands(since)
            ));
        }
        let tried = self.app.write_to_old_primary(old, 3);
        self.n().line(&format!(
            "a client still on the old connection string: {} of {} writes on the {} refused{}",
            tried.refused,
            tried.attempted,
            tried.side,
            tried.error.map(|e| format!(" ({e})")).unwrap_or_default()
        ));
    }

    /// Compares the old primary's snapshot with `actual` row by row, prints the comparison and
    /// returns it as the report has it.
    pub(super) fn parity(&mut self, compared: &str, actual: Side) -> ParityOut {
        let expected = self.before.clone();
        // The new primary as the redirect found it, before the application wrote to it.
        let actual_snap = self
            .app
            .at_redirect(actual)
            .or_else(|| self.sim.snapshot(actual, &self.database));
        let report = match (expected, actual_snap) {
            (Some(e), Some(a)) => ParityReport::compare(&e, &a),
            _ => ParityReport {
                database: self.database.clone(),
                expected: actual.other(),
                actual,
                tables: Vec::new(),
            },
        };
        let n = Arc::clone(&self.narrator);
        let short = |side: Side| match side {
            Side::SqlServer => "SQL Server",
            Side::ManagedInstance => "managed inst.",
        };
        n.line(&format!(
            "{:<18}{:>14}{:>14}  {}",
            "table",
            short(report.expected),
            short(report.actual),
            "rows and checksum"
        ));
        for t in &report.tables {
            n.line(&format!(
                "{:<18}{:>14}{:>14}  {}",
                t.table,
                thousands(t.expected_rows),
                thousands(t.actual_rows),
                if t.matches() { "match" } else { "MISMATCH" }
            ));
        }
        let out = ParityOut {
            compared: compared.to_string(),
            database: self.database.to_string(),
            all_match: report.all_match(),
            tables: report
                .tables
                .iter()
                .map(|t| TableReport {
                    table: t.table.clone(),
                    expected_rows: t.expected_rows,
                    actual_rows: t.actual_rows,
                    matches: t.matches(),
                })
                .collect(),
        };
        n.line(&format!(
            "{}: {} of {} tables identical",
            if out.all_match { "PASS" } else { "FAIL" },
            out.tables.iter().filter(|t| t.matches).count(),
            out.tables.len()
        ));
        out
    }
}
