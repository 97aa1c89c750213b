//! Reading observations: link readings, the catch-up gate, reports.

use super::*;

impl Machine {
    pub(super) fn record_link(
        &mut self,
        obs: Observation,
    ) -> Result<LinkObservation, RejectReason> {
        let link = expect_link(obs)?;
        // SQL Server's modes are read live over T-SQL: one found asynchronous means the link
        // is no longer prepared (the instance's ARM reading may lag, so it is not used here).
        let source = side_view(&link, Side::SqlServer);
        if [source.mode, source.partner_mode]
            .into_iter()
            .flatten()
            .any(|m| m != AvailabilityMode::SynchronousCommit)
        {
            self.synchronous = false;
        }
        self.last_link = Some(link.clone());
        self.last_probe_error = None;
        Ok(link)
    }

    /// The SQL Server DAG mode as last read (restored when a role change is abandoned).
    pub(super) fn current_mode(&self) -> Option<AvailabilityMode> {
        self.last_link.as_ref().and_then(|l| l.source.mode)
    }

    pub(super) fn steady_after(&self, primary: Side, data_loss_possible: bool) -> Steady {
        if primary == self.spec.initial_primary {
            Steady::Replicating
        } else {
            Steady::FailedOver {
                primary,
                data_loss_possible,
            }
        }
    }

    pub(super) fn then_after(&self, primary: Side, data_loss_possible: bool) -> Then {
        match self.steady_after(primary, data_loss_possible) {
            Steady::Replicating => Then::Replicating,
            Steady::FailedOver {
                data_loss_possible, ..
            } => Then::FailedOver { data_loss_possible },
        }
    }

    /// Mode, worst health and largest lag of the link with `primary` as primary, and one `Lag`
    /// event per database.
    pub(super) fn replication_report(
        &self,
        link: &LinkObservation,
        primary: Side,
    ) -> (
        Option<AvailabilityMode>,
        Option<SyncHealth>,
        Option<u64>,
        Vec<ProgressEvent>,
    ) {
        let pview = side_view(link, primary);
        let sview = side_view(link, primary.other());
        let mut health: Option<SyncHealth> = None;
        let mut lag: Option<u64> = None;
        let mut events = Vec::new();
        for name in &self.spec.databases {
            let p = find_db(pview, name);
            let s = find_db(sview, name);
            if let Some(s) = s {
                health = Some(match health {
                    Some(h) if health_rank(h) <= health_rank(s.health) => h,
                    Some(_) | None => s.health,
                });
            }
            let seconds = s
                .and_then(|d| d.lag_seconds)
                .or_else(|| p.and_then(|d| d.lag_seconds));
            let lsn_gap = match (
                p.and_then(|d| d.last_hardened_lsn),
                s.and_then(|d| d.last_hardened_lsn),
            ) {
                (Some(a), Some(b)) => Some(a.value().saturating_sub(b.value())),
                (Some(_), None) | (None, Some(_)) | (None, None) => None,
            };
            if let Some(sec) = seconds {
                lag = Some(lag.map_or(sec, |l| l.max(sec)));
            }
            if seconds.is_some() || lsn_gap.is_some() {
                events.push(ProgressEvent::Lag {
                    database: name.clone(),
                    seconds,
                    lsn_gap,
                });
            }
        }
        (pview.mode, health, lag, events)
    }

    /// The catch-up gate for a role change to `target`: the equal LSNs, or why not yet.
    ///
    /// Each fact comes from the source that really reports it:
    /// - availability modes: SQL Server's `sys.availability_replicas` for both replicas of the
    ///   distributed availability group (its own, and the managed instance's as SQL Server's
    ///   catalog holds it, when reported), and the instance's ARM `replicationMode`;
    /// - roles: SQL Server's `sys.dm_hadr_availability_replica_states` and the instance's ARM
    ///   `instanceLinkRole`;
    /// - the target's synchronization state: its own DMV row when the side reports one (SQL
    ///   Server over T-SQL), else the primary's DMV row for the remote replica (ARM has no
    ///   synchronization state);
    /// - LSNs: the current primary's `end_of_log_lsn` (else its `last_hardened_lsn`), the
    ///   target's `last_hardened_lsn` (the instance's through ARM `lastHardenedLsn`, which may
    ///   lag), and, when the primary reports its remote replica's row, that row's
    ///   `last_hardened_lsn`. All must be equal.
    ///
    /// Every database either side reports in the link is covered, not only the spec's.
    pub(super) fn catch_up_gate(
        &self,
        link: &LinkObservation,
        target: Side,
    ) -> Result<Vec<(DatabaseName, Lsn)>, CatchUpBlocker> {
        for side in [Side::SqlServer, Side::ManagedInstance] {
            let mode = side_view(link, side).mode;
            if mode != Some(AvailabilityMode::SynchronousCommit) {
                return Err(CatchUpBlocker::ModeNotSynchronous { side, mode });
            }
            let partner = side_view(link, side).partner_mode;
            if partner.is_some_and(|m| m != AvailabilityMode::SynchronousCommit) {
                return Err(CatchUpBlocker::ModeNotSynchronous {
                    side: side.other(),
                    mode: partner,
                });
            }
        }
        if role_of(link, target) != Some(ReplicaRole::Secondary)
            || role_of(link, target.other()) != Some(ReplicaRole::Primary)
        {
            return Err(CatchUpBlocker::RolesNotAsExpected);
        }
        let primary = target.other();
        let names = link_databases(&self.spec.databases, link);
        let mut lsns = Vec::with_capacity(names.len());
        for name in names {
            match sync_state_of(link, target, &name) {
                Some(SyncState::Synchronized) => {}
                state => {
                    return Err(CatchUpBlocker::NotSynchronized {
                        database: name,
                        state,
                    });
                }
            }
            let missing = |side: Side| CatchUpBlocker::LsnMissing {
                database: name.clone(),
                side,
            };
            let p = find_db(side_view(link, primary), &name);
            let t = find_db(side_view(link, target), &name);
            let primary_end = p
                .and_then(|d| d.end_of_log_lsn.or(d.last_hardened_lsn))
                .ok_or_else(|| missing(primary))?;
            let target_hardened = t
                .and_then(|d| d.last_hardened_lsn.or(d.end_of_log_lsn))
                .ok_or_else(|| missing(target))?;
            let partner_hardened = p.and_then(|d| d.partner).and_then(|r| r.last_hardened_lsn);
            let (source, instance) = match primary {
                Side::SqlServer => (primary_end, target_hardened),
                Side::ManagedInstance => (target_hardened, primary_end),
            };
            if source != instance && !self.mutated_equality() {
                return Err(CatchUpBlocker::LsnsNotEqual {
                    database: name,
                    source,
                    instance,
                });
            }
            if let Some(seen) = partner_hardened
                && seen != primary_end
                && !self.mutated_equality()
            {
                let (source, instance) = match primary {
                    Side::SqlServer => (primary_end, seen),
                    Side::ManagedInstance => (seen, primary_end),
                };
                return Err(CatchUpBlocker::LsnsNotEqual {
                    database: name,
                    source,
                    instance,
                });
            }
            lsns.push((name, primary_end));
        }
        Ok(lsns)
    }
}
