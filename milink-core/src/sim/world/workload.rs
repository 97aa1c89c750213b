//! Writes and the workload: commits, open transactions, the system writer and client sessions.

use super::*;

impl World {
    // ----- writes and the workload ------------------------------------------------------------

    /// Whether an application can write to `database` on `side` now.
    pub fn writable(&self, side: Side, database: &DatabaseName) -> Result<(), PortError> {
        match self.db_state(side, database) {
            None => {
                return Err(errors::sql(
                    errors::DATABASE_NOT_FOUND,
                    format!("Database '{database}' does not exist."),
                ));
            }
            Some(DbState::Restoring) => {
                return Err(errors::sql(
                    errors::DATABASE_RESTORING,
                    format!(
                        "Database '{database}' cannot be opened. It is in the middle of a restore."
                    ),
                ));
            }
            Some(DbState::Online) => {}
        }
        match side {
            Side::SqlServer => {
                let in_secondary_dag = self
                    .source
                    .ags
                    .values()
                    .filter(|ag| ag.databases.contains(database))
                    .any(|ag| {
                        self.source
                            .dags
                            .values()
                            .any(|d| d.sql_ag == ag.name && d.role != ReplicaRole::Primary)
                    });
                if in_secondary_dag {
                    return Err(errors::sql(
                        errors::SECONDARY_NOT_ACCESSIBLE,
                        format!(
                            "The target database, '{database}', is participating in an \
                             availability group and is currently not accessible for queries."
                        ),
                    ));
                }
            }
            Side::ManagedInstance => {
                let secondary = self
                    .instance
                    .databases
                    .get(database)
                    .and_then(|d| d.link.as_ref())
                    .and_then(|l| self.instance.links.get(l))
                    .is_some_and(|l| l.role != ReplicaRole::Primary);
                if secondary {
                    return Err(errors::sql(
                        errors::DATABASE_READ_ONLY,
                        format!(
                            "Failed to update database \"{database}\" because the database is \
                             read-only."
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Commits one transaction on `side`'s copy of `database` at `at`: an application's with
    /// `rows` rows (at least one), or a system task's with none. Returns its id, commit LSN and
    /// where its acknowledgement stands; `None` when the copy does not exist (or, for the
    /// application, has no tables).
    fn commit(
        &mut self,
        side: Side,
        database: &DatabaseName,
        at: Timestamp,
        rows: u32,
        application: bool,
    ) -> Option<(u64, u128, CommitStatus)> {
        let ntables = self.database(side, database).map(|d| d.tables.len())?;
        let mut inserted = Vec::new();
        let bytes = if application {
            if ntables == 0 {
                return None;
            }
            for i in 0..rows.max(1) {
                let table = self.rng().usize(0..ntables);
                let payload = self.rng().u64(..);
                let base = self
                    .database(side, database)
                    .and_then(|d| d.tables.get(table))
                    .map_or(0, |t| t.rows);
                let id = base + u64::from(i);
                let hash = row_hash(table, id, payload);
                inserted.push((u16::try_from(table).unwrap_or(u16::MAX), hash));
            }
            300 + 450 * rows.max(1) + self.rng().u32(0..400)
        } else {
            self.rng().u32(600..2400)
        };
        let nrows = u32::try_from(inserted.len()).unwrap_or(u32::MAX);
        let id = self.next_txn_id();
        let data = self.database_mut(side, database)?;
        let txn = data.next_txn(id, application, at, inserted, bytes);
        let lsn = txn.lsn;
        data.apply(txn);
        let status = if application {
            self.register_app_commit(side, database, id, nrows, at)
        } else {
            CommitStatus::Acknowledged
        };
        Some((id, lsn, status))
    }

    /// Commits one application transaction of `rows` rows on `side` now, as an application
    /// would. With the link in synchronous commit and its secondary SYNCHRONIZED the
    /// acknowledgement waits for the secondary ([`World::commit_status`] follows it).
    pub fn commit_transaction(
        &mut self,
        side: Side,
        database: &DatabaseName,
        rows: u32,
    ) -> Result<Committed, PortError> {
        self.writable(side, database)?;
        let now = self.now;
        let Some((id, lsn, status)) = self.commit(side, database, now, rows, true) else {
            return Err(errors::sql(
                errors::DATABASE_NOT_FOUND,
                format!("Database '{database}' has no table to write to."),
            ));
        };
        let lsn = Lsn::new(lsn).map_err(|e| PortError::permanent("sim", e.to_string()))?;
        Ok(Committed { id, lsn, status })
    }

    /// Commits one transaction of `rows` rows on `side` now.
    pub(crate) fn write(
        &mut self,
        side: Side,
        database: &DatabaseName,
        rows: u32,
    ) -> Result<Lsn, PortError> {
        self.commit_transaction(side, database, rows).map(|c| c.lsn)
    }

    /// The application begins a transaction on `side`'s copy of `database` now and holds it open
    /// for `duration`; then it commits one row (if the copy still accepts writes). While it is
    /// open the application's session shows it ([`World::client_sessions`]).
    pub fn hold_open_transaction(
        &mut self,
        side: Side,
        database: &DatabaseName,
        duration: Duration,
    ) -> Result<(), PortError> {
        self.writable(side, database)?;
        self.open_transactions.push(OpenTransaction {
            side,
            database: database.clone(),
            started: self.now,
            ends_at: self.now.plus(duration),
        });
        Ok(())
    }

    /// Commits the open transactions whose time has come (by `t`).
    pub(super) fn finish_open_transactions(&mut self, t: Timestamp) {
        let mut due: Vec<OpenTransaction> = Vec::new();
        self.open_transactions.retain(|o| {
            if o.ends_at <= t {
                due.push(o.clone());
                false
            } else {
                true
            }
        });
        due.sort_by_key(|o| o.ends_at);
        for o in due {
            match self.writable(o.side, &o.database) {
                Ok(()) => {
                    self.commit(o.side, &o.database, o.ends_at, 1, true);
                }
                Err(e) => {
                    self.workload_stats.refused += 1;
                    self.workload_stats.last_refusal = Some(e.to_string());
                }
            }
        }
    }

    /// The system writer (index maintenance, ghost cleanup): at each interval, one log record
    /// without rows on the primary's copy of every database of every replicating link.
    pub(super) fn run_background_log(&mut self, t: Timestamp) {
        while let Some(due) = self.next_background_log.filter(|d| *d <= t) {
            let targets: Vec<(Side, DatabaseName)> = self
                .replications
                .iter()
                .filter_map(|(link, r)| self.primary_of(link).map(|p| (p, r)))
                .flat_map(|(p, r)| r.databases.keys().map(move |db| (p, db.clone())))
                .collect();
            for (side, db) in targets {
                if self.db_state(side, &db) == Some(DbState::Online) {
                    self.commit(side, &db, due, 0, false);
                }
            }
            self.next_background_log = match self.config.background_log_interval {
                Some(i) if !i.is_zero() => Some(due.plus(i)),
                _ => None,
            };
        }
    }

    fn next_interarrival(&mut self, tps: f64) -> Duration {
        let tps = if tps.is_finite() && tps > 0.0 {
            tps
        } else {
            1.0
        };
        let u = self.rng().f64();
        let secs = -(1.0 - u).ln() / tps;
        Duration::from_millis((secs * 1000.0).clamp(1.0, 3_600_000.0) as u64)
    }

    pub(crate) fn start_workload(&mut self, spec: WorkloadSpec) {
        let gap = self.next_interarrival(spec.transactions_per_second);
        self.workload = Some(Workload {
            next_commit: self.now.plus(gap),
            spec,
            running: true,
            until: None,
        });
    }

    /// Makes the running workload stop by itself at `at` (virtual time), as an application
    /// that an operator shuts down while a session call is under way.
    pub(crate) fn stop_workload_at(&mut self, at: Timestamp) {
        if let Some(w) = self.workload.as_mut() {
            w.until = Some(at);
        }
    }

    pub(crate) fn stop_workload(&mut self) {
        if let Some(w) = self.workload.as_mut() {
            w.running = false;
        }
    }

    pub(crate) fn redirect_workload(&mut self, target: Side) {
        if let Some(w) = self.workload.as_mut() {
            w.spec.target = target;
        }
    }

    /// What `sys.dm_exec_sessions` shows of the simulated application on `side`: a client
    /// session per database of `databases` it uses there: the one the workload runs against
    /// (idle between commits), and each one it holds a transaction open in (with the count and
    /// start of its open transactions). None when it uses none of them.
    pub fn client_sessions(&self, side: Side, databases: &[DatabaseName]) -> WorkloadActivity {
        let workload_db = self
            .workload
            .as_ref()
            .filter(|w| w.running && w.spec.target == side)
            .map(|w| &w.spec.database);
        // The workload's session keeps its id; a transaction held open in another database has
        // a session of its own.
        let others: BTreeSet<&DatabaseName> = self
            .open_transactions
            .iter()
            .filter(|o| o.side == side && Some(&o.database) != workload_db)
            .map(|o| &o.database)
            .collect();
        let used = workload_db
            .map(|db| (db, APP_SESSION_ID))
            .into_iter()
            .chain(others.into_iter().zip(APP_SESSION_ID.saturating_add(1)..));
        let mut sessions: Vec<ClientSession> = used
            .filter(|(db, _)| databases.contains(db))
            .map(|(db, session_id)| {
                let open: Vec<&OpenTransaction> = self
                    .open_transactions
                    .iter()
                    .filter(|o| o.side == side && &o.database == db)
                    .collect();
                ClientSession {
                    session_id,
                    database: db.clone(),
                    login: APP_LOGIN.to_owned(),
                    host: Some(APP_HOST.to_owned()),
                    program: Some(APP_PROGRAM.to_owned()),
                    status: "sleeping".to_owned(),
                    open_transactions: u32::try_from(open.len()).unwrap_or(u32::MAX),
                    oldest_transaction_start: open.iter().map(|o| o.started).min(),
                }
            })
            .collect();
        sessions.sort_by(|a, b| (&a.database, a.session_id).cmp(&(&b.database, b.session_id)));
        WorkloadActivity { sessions }
    }

    pub(super) fn run_workload(&mut self, until: Timestamp) {
        loop {
            let Some(w) = self.workload.as_ref().filter(|w| w.running) else {
                return;
            };
            if w.until.is_some_and(|u| w.next_commit >= u) {
                self.stop_workload();
                return;
            }
            if w.next_commit > until {
                return;
            }
            let at = w.next_commit;
            let spec = w.spec.clone();
            match self.writable(spec.target, &spec.database) {
                Ok(()) => {
                    let max = spec.max_rows_per_transaction.max(1);
                    let rows = self.rng().u32(1..=max);
                    self.commit(spec.target, &spec.database, at, rows, true);
                    self.workload_stats.committed += 1;
                    self.workload_stats.rows += u64::from(rows);
                }
                Err(e) => {
                    self.workload_stats.refused += 1;
                    self.workload_stats.last_refusal = Some(e.to_string());
                }
            }
            let gap = self.next_interarrival(spec.transactions_per_second);
            if let Some(w) = self.workload.as_mut() {
                w.next_commit = at.plus(gap);
            }
        }
    }

    /// A copy of `database`'s tables on `side`.
    pub fn snapshot(&self, side: Side, database: &DatabaseName) -> Option<DbSnapshot> {
        let d = self.database(side, database)?;
        if self.db_state(side, database) == Some(DbState::Restoring) && d.tables.is_empty() {
            return None;
        }
        Some(DbSnapshot {
            side,
            database: database.clone(),
            tables: d.tables.clone(),
            end_lsn: d.end.lsn,
        })
    }
}
