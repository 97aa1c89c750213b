//! What each side reports: its view of a link, seeding progress, events and backups.

use super::*;

impl World {
    // ----- what each side reports -------------------------------------------------------------

    /// `side`'s view of `link` for `databases`.
    pub(crate) fn side_view(
        &self,
        side: Side,
        link: &LinkName,
        databases: &[DatabaseName],
    ) -> SideView {
        let exists = match side {
            Side::SqlServer => self.source.dags.contains_key(link),
            Side::ManagedInstance => self.instance.links.contains_key(link),
        };
        if !exists {
            return SideView::unknown();
        }
        let repl = self.replications.get(link);
        SideView {
            exists: true,
            role: self.role(side, link),
            mode: self.mode_of(side, link),
            // SQL Server's catalog lists both replicas of the DAG; ARM has one mode.
            partner_mode: match side {
                Side::SqlServer => self.source.dags.get(link).map(|d| d.mi_mode),
                Side::ManagedInstance => None,
            },
            connected: repl
                .is_some_and(|r| r.connected || r.databases.values().any(|d| d.synchronized)),
            // Read with the link: the build from SQL Server, the update policy and the link's
            // failover mode from ARM.
            version: (side == Side::SqlServer).then_some(self.source.version),
            update_policy: (side == Side::ManagedInstance).then_some(self.instance.update_policy),
            failover_mode: match side {
                Side::SqlServer => None,
                Side::ManagedInstance => self
                    .instance
                    .links
                    .get(link)
                    .map(|l| l.properties.failover_mode),
            },
            databases: databases
                .iter()
                .map(|db| {
                    let mut v = self.database_view(side, link, db, repl);
                    match side {
                        // The DMV's local row: the end of this copy's log.
                        Side::SqlServer => {
                            v.end_of_log_lsn = self
                                .database(side, db)
                                .filter(|_| self.db_state(side, db) == Some(DbState::Online))
                                .and_then(|d| lsn(d.end.lsn));
                        }
                        // ARM's `databases[]` has no synchronization state.
                        Side::ManagedInstance => v.sync_state = None,
                    }
                    v
                })
                .collect(),
            live: false,
        }
    }

    fn database_view(
        &self,
        side: Side,
        link: &LinkName,
        db: &DatabaseName,
        repl: Option<&Replication>,
    ) -> DatabaseView {
        let local = self
            .database(side, db)
            .filter(|_| self.db_state(side, db) == Some(DbState::Online));
        let is_primary = self.role(side, link) == Some(ReplicaRole::Primary);
        let own_mode = self.mode_of(side, link);
        let mut v = DatabaseView {
            name: db.clone(),
            sync_state: Some(SyncState::NotSynchronizing),
            health: SyncHealth::NotHealthy,
            last_hardened_lsn: None,
            end_of_log_lsn: None,
            partner: None,
            last_commit_lsn: local.and_then(|d| lsn(d.end.lsn)),
            seeding_percent: None,
            log_send_queue_kb: None,
            redo_queue_kb: None,
            lag_seconds: None,
            last_error: repl.and_then(|r| r.last_error.clone()),
            replica_state: None,
        };
        if is_primary && own_mode == Some(AvailabilityMode::SynchronousCommit) {
            v.last_hardened_lsn = local.and_then(|d| lsn(d.end.lsn));
        }
        let Some(r) = repl.and_then(|r| r.databases.get(db)) else {
            if !is_primary {
                v.last_hardened_lsn = local.and_then(|d| lsn(d.end.lsn));
            }
            return v;
        };
        if side == Side::ManagedInstance {
            // The link resource's `databases[].replicaState`.
            v.replica_state = Some(
                match &r.phase {
                    ReplicaPhase::WaitingToSeed => "CreatingLink",
                    ReplicaPhase::Seeding(_) => "Seeding",
                    // An accepted failover or setRole that has not finished yet.
                    ReplicaPhase::Synchronizing if self.role_change_pending(link) => {
                        "LinkFailoverInProgress"
                    }
                    ReplicaPhase::Synchronizing => "LinkSynchronizing",
                    ReplicaPhase::Failed { .. } => "LinkCreationError",
                }
                .to_owned(),
            );
        }
        match &r.phase {
            ReplicaPhase::WaitingToSeed => {}
            ReplicaPhase::Seeding(s) => v.seeding_percent = Some(s.percent()),
            ReplicaPhase::Failed { code, message } => {
                v.last_error = Some(format!("{code}: {message}"));
            }
            ReplicaPhase::Synchronizing => {
                if !is_primary {
                    v.last_hardened_lsn = local.and_then(|d| lsn(d.end.lsn));
                    v.redo_queue_kb = Some(0);
                }
                // A cut network is noticed only when `SESSION_TIMEOUT` passes without an
                // answer: until then the primary still reports its synchronous secondary
                // connected and SYNCHRONIZED, at the log point it last heard of.
                let connected = repl.is_some_and(|x| x.connected) || r.synchronized;
                if let (true, Some(p)) = (connected, self.primary_of(link)) {
                    let sync =
                        self.effective_mode(link) == Some(AvailabilityMode::SynchronousCommit);
                    let (mut state, mut health) = match (sync, r.synchronized) {
                        (true, true) => (SyncState::Synchronized, SyncHealth::Healthy),
                        (true, false) => (SyncState::Synchronizing, SyncHealth::PartiallyHealthy),
                        (false, _) => (SyncState::Synchronizing, SyncHealth::Healthy),
                    };
                    // A demoted old primary undoing its divergent tail: its own row and the
                    // primary's row for it say REVERTING; the primary's own row does not.
                    let reverting = r.reverting_until.is_some();
                    let secondary_state = if reverting {
                        SyncState::Reverting
                    } else {
                        state
                    };
                    if reverting && !is_primary {
                        (state, health) = (SyncState::Reverting, SyncHealth::NotHealthy);
                    }
                    v.sync_state = Some(state);
                    v.health = health;
                    if is_primary && side == Side::SqlServer {
                        // The primary's DMV row for the remote replica.
                        v.partner = Some(PartnerReplica {
                            sync_state: secondary_state,
                            last_hardened_lsn: if reverting || !repl.is_some_and(|x| x.connected) {
                                lsn(r.common.lsn)
                            } else {
                                self.database(side.other(), db).and_then(|d| lsn(d.end.lsn))
                            },
                        });
                    }
                    if let Some(lag) = self.lag(link, db) {
                        v.lag_seconds = Some(lag.lag.as_secs());
                    }
                    if is_primary {
                        v.log_send_queue_kb = self
                            .database(p, db)
                            .map(|d| d.bytes_after(r.sent_upto).div_ceil(1024));
                    }
                }
            }
        }
        v
    }

    /// A readable summary of a seeding in progress: `(percent, attempt)`.
    pub fn seeding(&self, link: &LinkName, database: &DatabaseName) -> Option<(u8, u32)> {
        match &self.replications.get(link)?.databases.get(database)?.phase {
            ReplicaPhase::Seeding(s) => Some((s.percent(), s.attempt)),
            _ => None,
        }
    }

    /// Events of a kind since index `from` (for the example's progress output).
    pub fn events_since(&self, from: usize) -> &[SimEvent] {
        self.events.get(from..).unwrap_or(&[])
    }

    /// Latest full backups per database, as `msdb.dbo.backupset` would answer.
    pub(crate) fn full_backups_of(
        &self,
        databases: &[DatabaseName],
    ) -> Vec<(DatabaseName, Option<Timestamp>)> {
        databases
            .iter()
            .map(|d| (d.clone(), self.latest_full_backup(d)))
            .collect()
    }

    /// A source database's facts.
    pub fn source_database(&self, database: &DatabaseName) -> Option<&SourceDatabase> {
        self.source.databases.get(database)
    }
}
