//! Replication: connecting, seeding, shipping log, and the failovers that swap roles.

use super::*;

impl World {
    // ----- replication ------------------------------------------------------------------------

    /// Starts replicating `link` (the instance joined): the first connection comes after the
    /// configured delay.
    pub(crate) fn create_replication(&mut self, link: &LinkName, databases: &[DatabaseName]) {
        let delay = self.sample(self.config.connect_delay);
        let now = self.now;
        let dbs = databases
            .iter()
            .map(|db| (db.clone(), Self::waiting_to_seed(now)))
            .collect();
        self.replications.insert(
            link.clone(),
            Replication {
                link: link.clone(),
                created: now,
                connect_at: now.plus(delay),
                connected: false,
                last_error: None,
                disconnected_at: None,
                databases: dbs,
            },
        );
        for db in databases {
            self.commits.orphaned.remove(db);
        }
        self.event(EventKind::LinkJoined { link: link.clone() });
    }

    fn waiting_to_seed(now: Timestamp) -> DbReplication {
        DbReplication {
            phase: ReplicaPhase::WaitingToSeed,
            common: LogPoint {
                lsn: 0,
                offset: 0,
                committed: None,
            },
            sent_upto: 0,
            synchronized: false,
            seeding_attempts: 0,
            reverting_until: None,
            link_free_at: now,
            in_flight: VecDeque::new(),
        }
    }

    /// `databases` join the replication of `link` (its list grew): each waits to be seeded
    /// from the primary, as at the link's creation.
    pub(crate) fn add_replica_databases(&mut self, link: &LinkName, databases: &[DatabaseName]) {
        let now = self.now;
        let Some(r) = self.replications.get_mut(link) else {
            return;
        };
        for db in databases {
            r.databases
                .entry(db.clone())
                .or_insert_with(|| Self::waiting_to_seed(now));
        }
        for db in databases {
            self.commits.orphaned.remove(db);
        }
    }

    /// `database` leaves the replication of `link` (its list shrank).
    pub(crate) fn remove_replica_database(&mut self, link: &LinkName, database: &DatabaseName) {
        if let Some(r) = self.replications.get_mut(link) {
            r.databases.remove(database);
        }
    }

    /// Stops replicating `link` (either side removed it).
    pub(crate) fn remove_replication(&mut self, link: &LinkName) {
        self.replications.remove(link);
    }

    /// Every database of `link` is joined, connected, in synchronous commit (both replicas of
    /// SQL Server's DAG and the instance's `replicationMode`) and SYNCHRONIZED.
    pub fn is_synchronized(&self, link: &LinkName) -> bool {
        let Some(r) = self.replications.get(link) else {
            return false;
        };
        if self.primary_of(link).is_none() {
            return false;
        }
        r.connected
            && self.effective_mode(link) == Some(AvailabilityMode::SynchronousCommit)
            && !r.databases.is_empty()
            && r.databases
                .values()
                .all(|d| matches!(d.phase, ReplicaPhase::Synchronizing) && d.synchronized)
    }

    /// Exact lag of `database` in `link`.
    pub fn lag(&self, link: &LinkName, database: &DatabaseName) -> Option<LagInfo> {
        let r = self.replications.get(link)?.databases.get(database)?;
        if !matches!(r.phase, ReplicaPhase::Synchronizing) {
            return None;
        }
        let p = self.primary_of(link)?;
        let pd = self.database(p, database)?;
        let sd = self.database(p.other(), database)?;
        let behind: Vec<&Txn> = pd.log_after(sd.end.lsn).collect();
        // How long the oldest commit the secondary lacks has been waiting.
        let lag = behind
            .first()
            .map_or(Duration::ZERO, |t| self.now.since(t.committed));
        Some(LagInfo {
            primary_lsn: pd.end.lsn,
            secondary_lsn: sd.end.lsn,
            lag,
            unshipped_bytes: behind.iter().map(|t| u64::from(t.bytes)).sum(),
            unshipped_transactions: behind.len() as u64,
        })
    }

    pub(super) fn update_replications(&mut self, t0: Timestamp, t1: Timestamp) {
        let links: Vec<LinkName> = self.replications.keys().cloned().collect();
        let seeding_now = self
            .replications
            .values()
            .flat_map(|r| r.databases.values())
            .filter(|d| matches!(d.phase, ReplicaPhase::Seeding(_)))
            .count()
            .max(1);
        for link in links {
            let transport = self.transport();
            let split_brain = self.role(Side::SqlServer, &link) == Some(ReplicaRole::Primary)
                && self.role(Side::ManagedInstance, &link) == Some(ReplicaRole::Primary);
            let Some(r) = self.replications.get(&link) else {
                continue;
            };
            let due = t1 >= r.connect_at;
            let up = due && transport.is_ok() && !split_brain;
            let was = r.connected;
            let reason = match (&transport, split_brain) {
                (Err(f), _) => Some(f.render()),
                (Ok(()), true) => Some(
                    "both replicas are PRIMARY (split brain); demote one with SET (ROLE = \
                     SECONDARY)"
                        .to_string(),
                ),
                (Ok(()), false) => None,
            };
            if let Some(r) = self.replications.get_mut(&link) {
                r.connected = up;
                r.last_error = if due { reason.clone() } else { None };
            }
            if was && !up {
                self.on_disconnect(&link, reason.unwrap_or_default());
            } else if !was && up {
                self.on_connect(&link, t1);
            }
            if !up {
                continue;
            }
            let Some(p) = self.primary_of(&link) else {
                continue;
            };
            let dbs: Vec<DatabaseName> = self
                .replications
                .get(&link)
                .map(|r| r.databases.keys().cloned().collect())
                .unwrap_or_default();
            for db in dbs {
                self.replicate(&link, &db, p, t0, t1, seeding_now);
            }
        }
    }

    fn on_connect(&mut self, link: &LinkName, t: Timestamp) {
        if let Some(r) = self.replications.get_mut(link) {
            r.disconnected_at = None;
            for d in r.databases.values_mut() {
                d.link_free_at = t;
            }
        }
        self.event(EventKind::Connected { link: link.clone() });
    }

    fn on_disconnect(&mut self, link: &LinkName, reason: String) {
        let mut interrupted = Vec::new();
        let now = self.now;
        if let Some(r) = self.replications.get_mut(link) {
            r.disconnected_at = Some(now);
            for (db, d) in r.databases.iter_mut() {
                d.in_flight.clear();
                d.sent_upto = d.common.lsn;
                d.reverting_until = None;
                // A synchronous secondary stays SYNCHRONIZED for the primary (commits keep
                // waiting for it) until `SESSION_TIMEOUT` passes without an answer.
                if let ReplicaPhase::Seeding(s) = &d.phase {
                    interrupted.push((db.clone(), s.percent()));
                    d.phase = ReplicaPhase::WaitingToSeed;
                }
            }
        }
        self.event(EventKind::Disconnected {
            link: link.clone(),
            reason,
        });
        for (database, percent) in interrupted {
            self.event(EventKind::SeedingInterrupted { database, percent });
        }
    }

    fn replicate(
        &mut self,
        link: &LinkName,
        db: &DatabaseName,
        primary: Side,
        t0: Timestamp,
        t1: Timestamp,
        seeding_now: usize,
    ) {
        let Some(mut r) = self
            .replications
            .get_mut(link)
            .and_then(|x| x.databases.remove(db))
        else {
            return;
        };
        let mut fired = Vec::new();
        match r.phase.clone() {
            ReplicaPhase::WaitingToSeed => self.start_seeding(link, db, primary, &mut r, t1),
            ReplicaPhase::Seeding(s) => {
                fired = self.progress_seeding(link, db, primary, &mut r, s, t0, t1, seeding_now);
            }
            ReplicaPhase::Synchronizing => self.ship(link, db, primary, &mut r, t1),
            ReplicaPhase::Failed { .. } => {}
        }
        if let Some(x) = self.replications.get_mut(link) {
            x.databases.insert(db.clone(), r);
        }
        // Faults triggered by seeding progress see the replication as it is now.
        for f in fired {
            if f.is_world_fault() {
                self.apply_fault(&f);
            } else {
                self.faults.armed.push(f);
            }
        }
    }

    fn start_seeding(
        &mut self,
        link: &LinkName,
        db: &DatabaseName,
        primary: Side,
        r: &mut DbReplication,
        t: Timestamp,
    ) {
        let Some(image) = self.database(primary, db).map(DbData::image) else {
            return;
        };
        let size = match primary {
            Side::SqlServer => self
                .source
                .databases
                .get(db)
                .map_or(0, |d| d.facts.size_bytes()),
            Side::ManagedInstance => self.instance.databases.get(db).map_or(0, |d| d.size_bytes),
        };
        let secondary = primary.other();
        let empty = DbData::restoring(&image);
        match secondary {
            Side::ManagedInstance => {
                let e = self
                    .instance
                    .databases
                    .entry(db.clone())
                    .or_insert_with(|| InstanceDatabase {
                        data: empty.clone(),
                        state: DbState::Restoring,
                        link: Some(link.clone()),
                        size_bytes: size,
                        primary_since: None,
                    });
                e.state = DbState::Restoring;
                e.link = Some(link.clone());
                e.data = empty;
            }
            Side::SqlServer => {
                let database_id = self
                    .source
                    .databases
                    .values()
                    .map(|d| d.database_id)
                    .max()
                    .unwrap_or(4)
                    .saturating_add(1);
                let facts = DatabaseTopology {
                    tables: Vec::new(),
                    last_full_backup: None,
                    ..DatabaseTopology::ready(db.clone(), size / (1024 * 1024), t)
                };
                let e = self
                    .source
                    .databases
                    .entry(db.clone())
                    .or_insert_with(|| SourceDatabase {
                        facts,
                        data: empty.clone(),
                        state: DbState::Restoring,
                        last_log_backup: None,
                        database_id,
                    });
                e.state = DbState::Restoring;
                e.data = empty;
            }
        }
        r.seeding_attempts += 1;
        r.phase = ReplicaPhase::Seeding(Seeding {
            started: t,
            bytes_total: size,
            bytes_done: 0,
            start: image.end,
            attempt: r.seeding_attempts,
            image: Box::new(image),
        });
        self.event(EventKind::SeedingStarted {
            database: db.clone(),
            attempt: r.seeding_attempts,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn progress_seeding(
        &mut self,
        link: &LinkName,
        db: &DatabaseName,
        primary: Side,
        r: &mut DbReplication,
        mut s: Seeding,
        t0: Timestamp,
        t1: Timestamp,
        seeding_now: usize,
    ) -> Vec<Fault> {
        let from = t0.max(s.started);
        let dt_ms = u128::from(t1.as_millis().saturating_sub(from.as_millis()));
        let rate = u128::from(self.config.seeding_bytes_per_sec) / seeding_now as u128;
        let add = u64::try_from(rate * dt_ms / 1000).unwrap_or(u64::MAX);
        s.bytes_done = s.bytes_done.saturating_add(add).min(s.bytes_total);
        let fired = self.faults.seeding_reached(db, s.percent());
        if !fired.is_empty() || s.bytes_done < s.bytes_total || self.transport().is_err() {
            r.phase = ReplicaPhase::Seeding(s);
            return fired;
        }
        // The backup is restored; the secondary now needs the log from the backup's start.
        let truncated = self
            .database(primary, db)
            .is_some_and(|d| d.truncated_to > s.start.lsn);
        if truncated {
            let message = format!(
                "The remote copy of database '{db}' has not been rolled forward to a point in \
                 time that is encompassed in the local copy of the database log (a log backup on \
                 the primary truncated the log during seeding; 1408 may also appear). Delete the \
                 link and drop the distributed availability group, then create them again; do \
                 not take log backups during seeding, or enable trace flag 12381."
            );
            r.phase = ReplicaPhase::Failed {
                code: errors::NOT_ROLLED_FORWARD,
                message,
            };
            self.event(EventKind::SeedingFailed {
                database: db.clone(),
                code: errors::NOT_ROLLED_FORWARD,
            });
            return Vec::new();
        }
        let secondary = primary.other();
        let start = s.start;
        let image = *s.image;
        match secondary {
            Side::ManagedInstance => {
                if let Some(d) = self.instance.databases.get_mut(db) {
                    d.data = image;
                    d.state = DbState::Online;
                    d.link = Some(link.clone());
                }
                if self.config.backups_while_secondary {
                    self.schedule_first_full(db);
                }
            }
            Side::SqlServer => {
                if let Some(d) = self.source.databases.get_mut(db) {
                    d.data = image;
                    d.state = DbState::Online;
                    d.facts.last_full_backup = None;
                }
            }
        }
        r.phase = ReplicaPhase::Synchronizing;
        r.common = start;
        r.sent_upto = start.lsn;
        r.link_free_at = t1;
        r.in_flight.clear();
        self.event(EventKind::SeedingCompleted {
            database: db.clone(),
        });
        Vec::new()
    }

    fn ship(
        &mut self,
        link: &LinkName,
        db: &DatabaseName,
        primary: Side,
        r: &mut DbReplication,
        t1: Timestamp,
    ) {
        let secondary = primary.other();
        // A demoted old primary first undoes what the new primary never had: it is REVERTING
        // for a while and keeps its end of log until the tail is undone.
        let divergent = self
            .database(secondary, db)
            .is_some_and(|d| d.end.lsn > r.common.lsn);
        if divergent {
            let until = match r.reverting_until {
                Some(until) => until,
                None => {
                    r.sent_upto = r.common.lsn;
                    r.in_flight.clear();
                    t1.plus(self.config.revert_duration)
                }
            };
            if until > t1 {
                r.reverting_until = Some(until);
                return;
            }
        }
        r.reverting_until = None;
        let reverted = match self.database_mut(secondary, db) {
            Some(d) if d.end.lsn > r.common.lsn => d.revert_to(r.common),
            _ => 0,
        };
        if reverted > 0 {
            *self
                .stats
                .reverted_transactions
                .entry(db.clone())
                .or_insert(0) += reverted;
            self.event(EventKind::TransactionsReverted {
                database: db.clone(),
                side: secondary,
                transactions: reverted,
            });
            r.sent_upto = r.common.lsn;
            r.in_flight.clear();
        }
        let bandwidth = u128::from(self.config.link_bandwidth_bytes_per_sec.max(1));
        let latency = self.config.link_latency;
        if let Some(p) = self.database(primary, db) {
            for txn in p.log_after(r.sent_upto) {
                let start = txn.committed.max(r.link_free_at);
                if start > t1 {
                    break;
                }
                let ms = (u128::from(txn.bytes) * 1000).div_ceil(bandwidth);
                let sent_at = start.plus(Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
                r.link_free_at = sent_at;
                r.sent_upto = txn.lsn;
                r.in_flight.push_back((sent_at.plus(latency), txn.clone()));
            }
        }
        let mut hardened = Vec::new();
        while r.in_flight.front().is_some_and(|(at, _)| *at <= t1) {
            let Some((_, txn)) = r.in_flight.pop_front() else {
                break;
            };
            if let Some(s) = self.database_mut(secondary, db) {
                hardened.push(txn.id);
                s.apply(txn);
                r.common = s.end;
            }
        }
        for id in hardened {
            self.harden(id);
        }
        let sync = self.effective_mode(link) == Some(AvailabilityMode::SynchronousCommit);
        let caught_up = r.in_flight.is_empty()
            && self.database(primary, db).map(|d| d.end.lsn)
                == self.database(secondary, db).map(|d| d.end.lsn);
        r.synchronized = sync && (r.synchronized || caught_up);
    }

    /// T-SQL planned failover (`ALTER AVAILABILITY GROUP … FAILOVER`): only from a SYNCHRONIZED
    /// secondary in synchronous commit; what is still in flight reaches it (the primary waits for
    /// its synchronized secondary), then the roles swap. Nothing is lost.
    pub(crate) fn planned_failover(&mut self, link: &LinkName) -> Result<Side, String> {
        let Some(p) = self.primary_of(link) else {
            return Err("the link has no single primary replica".to_string());
        };
        if !self.is_synchronized(link) {
            return Err(
                "the secondary is not SYNCHRONIZED in synchronous commit (switch both sides to \
                 SYNCHRONOUS_COMMIT and wait for the secondary to catch up)"
                    .to_string(),
            );
        }
        let s = p.other();
        for db in self.link_databases(link) {
            let tail: Vec<Txn> = match (self.database(p, &db), self.database(s, &db)) {
                (Some(pd), Some(sd)) => pd.log_after(sd.end.lsn).cloned().collect(),
                _ => Vec::new(),
            };
            let ids: Vec<u64> = tail.iter().map(|t| t.id).collect();
            if let Some(sd) = self.database_mut(s, &db) {
                for txn in tail {
                    sd.apply(txn);
                }
            }
            for id in ids {
                self.harden(id);
            }
            let end = self.database(s, &db).map(|d| d.end);
            if let Some(r) = self
                .replications
                .get_mut(link)
                .and_then(|r| r.databases.get_mut(&db))
                && let Some(end) = end
            {
                r.in_flight.clear();
                r.common = end;
                r.sent_upto = end.lsn;
            }
        }
        self.swap_roles(link, p);
        Ok(s)
    }

    /// ARM planned failover (`failover` with `Planned`) as it completes: the roles swap with what
    /// the secondary has hardened. The old primary's unshipped tail (not yet sent, or in flight)
    /// is discarded and counted lost; the old primary reverts it when it rejoins as secondary.
    pub(crate) fn arm_planned_failover(&mut self, link: &LinkName) -> Result<Side, String> {
        let Some(p) = self.primary_of(link) else {
            return Err("the link has no single primary replica".to_string());
        };
        if !self.replications.get(link).is_some_and(|r| r.connected) {
            return Err("the replicas are not connected".to_string());
        }
        let s = p.other();
        for db in self.link_databases(link) {
            let ends = (
                self.database(p, &db).map(|d| d.end),
                self.database(s, &db).map(|d| d.end),
            );
            if let (Some(old_end), Some(end)) = ends
                && let Some(r) = self
                    .replications
                    .get_mut(link)
                    .and_then(|r| r.databases.get_mut(&db))
            {
                r.in_flight.clear();
                r.common = end;
                r.sent_upto = end.lsn;
                r.synchronized = r.synchronized && old_end.lsn == end.lsn;
            }
        }
        self.swap_roles(link, p);
        Ok(s)
    }

    /// The planned role change itself: `old` becomes secondary, the other side primary; what
    /// the old primary holds beyond the new primary is counted lost.
    fn swap_roles(&mut self, link: &LinkName, old: Side) {
        let new = old.other();
        self.set_role(old, link, ReplicaRole::Secondary);
        self.set_role(new, link, ReplicaRole::Primary);
        for db in self.link_databases(link) {
            self.count_loss(&db, old, new);
            if new == Side::ManagedInstance {
                self.schedule_first_full(&db);
            }
        }
    }

    /// Forced failover: `new_primary` becomes primary with what it has; what the other side
    /// holds beyond it (the old primary's unshipped tail, or a fenced primary's) is lost.
    pub(crate) fn force_primary(&mut self, link: &LinkName, new_primary: Side) {
        let old = new_primary.other();
        let old_was_primary = self.role(old, link) == Some(ReplicaRole::Primary);
        self.set_role(new_primary, link, ReplicaRole::Primary);
        if old_was_primary
            && self.config.forced_failover_demotes_old_primary
            && self.transport().is_ok()
        {
            self.set_role(old, link, ReplicaRole::Secondary);
        }
        for db in self.link_databases(link) {
            let Some(new_end) = self.database(new_primary, &db).map(|d| d.end) else {
                continue;
            };
            self.count_loss(&db, old, new_primary);
            if let Some(r) = self
                .replications
                .get_mut(link)
                .and_then(|r| r.databases.get_mut(&db))
            {
                // The logs part where they last agreed: the new primary's end, or, when the new
                // primary is ahead of the other copy (a fenced old primary), the other copy's.
                if r.common.lsn > new_end.lsn {
                    r.common = new_end;
                }
                r.sent_upto = r.common.lsn;
                r.in_flight.clear();
                r.synchronized = false;
                r.reverting_until = None;
            }
            if new_primary == Side::ManagedInstance {
                self.schedule_first_full(&db);
            }
        }
    }

    /// `SET (ROLE = SECONDARY)` on SQL Server. With the instance primary it ends a split brain:
    /// SQL Server's divergent tail is lost (counted here; it reverts when it rejoins). With the
    /// instance secondary it fences the link: no side accepts writes or ships, waiting commits
    /// end with an error, and nothing is lost (the data stays).
    pub(crate) fn demote_sql_server(&mut self, link: &LinkName) {
        let was_primary = self.role(Side::SqlServer, link) == Some(ReplicaRole::Primary);
        self.set_role(Side::SqlServer, link, ReplicaRole::Secondary);
        if !was_primary {
            return;
        }
        match self.role(Side::ManagedInstance, link) {
            Some(ReplicaRole::Primary) => {
                for db in self.link_databases(link) {
                    self.count_loss(&db, Side::SqlServer, Side::ManagedInstance);
                }
            }
            Some(ReplicaRole::Secondary) => self.event(EventKind::Fenced { link: link.clone() }),
            Some(ReplicaRole::Resolving) | None => {}
        }
    }

    /// Whether the secondary copy of every database of `link` on `side` can start as primary
    /// (not seeding, not restoring, not REVERTING).
    pub(crate) fn can_become_primary(&self, link: &LinkName, side: Side) -> bool {
        let dbs = self.link_databases(link);
        let secondary = self.role(side, link) != Some(ReplicaRole::Primary);
        !dbs.is_empty()
            && dbs.iter().all(|db| {
                self.db_state(side, db) == Some(DbState::Online)
                    && self
                        .replications
                        .get(link)
                        .and_then(|r| r.databases.get(db))
                        .is_none_or(|d| {
                            matches!(d.phase, ReplicaPhase::Synchronizing)
                                && !(secondary && d.reverting_until.is_some())
                        })
            })
    }
}
