//! Log backups and truncation on SQL Server, and the instance's automatic backups.

use super::*;

impl World {
    // ----- log backups and truncation ---------------------------------------------------------

    /// The lowest LSN the log of `database` on `side` must keep for replication.
    fn truncation_hold(&self, side: Side, database: &DatabaseName) -> Option<u128> {
        let mut hold: Option<u128> = None;
        let mut keep = |l: u128| hold = Some(hold.map_or(l, |h| h.min(l)));
        for (link, r) in &self.replications {
            let Some(d) = r.databases.get(database) else {
                continue;
            };
            if self.role(side, link) != Some(ReplicaRole::Primary) {
                continue;
            }
            match &d.phase {
                ReplicaPhase::Synchronizing => keep(d.common.lsn),
                ReplicaPhase::Seeding(s)
                    if side == Side::SqlServer
                        && self
                            .source
                            .trace_flags
                            .contains(&TF_HOLD_LOG_DURING_SEEDING) =>
                {
                    keep(s.start.lsn)
                }
                _ => {}
            }
        }
        hold
    }

    /// `BACKUP LOG` of `database` on SQL Server: truncates the log up to what replication
    /// still needs.
    pub(crate) fn source_log_backup(&mut self, database: &DatabaseName) -> Result<(), PortError> {
        let Some(db) = self.source.databases.get(database) else {
            return Err(errors::sql(
                errors::DATABASE_NOT_FOUND,
                format!("Database '{database}' does not exist."),
            ));
        };
        if db.facts.recovery_model == RecoveryModel::Simple {
            return Err(errors::sql(
                errors::LOG_BACKUP_SIMPLE,
                format!(
                    "The statement BACKUP LOG is not allowed while the recovery model is SIMPLE \
                     ('{database}')."
                ),
            ));
        }
        if db.facts.last_full_backup.is_none() {
            return Err(errors::sql(
                errors::NO_CURRENT_BACKUP,
                format!(
                    "BACKUP LOG cannot be performed because there is no current database backup \
                     of '{database}'."
                ),
            ));
        }
        let end = db.data.end.lsn;
        let to = self
            .truncation_hold(Side::SqlServer, database)
            .map_or(end, |h| h.min(end));
        let now = self.now;
        if let Some(d) = self.source.databases.get_mut(database) {
            d.data.truncate_log(to);
            d.last_log_backup = Some(now);
        }
        self.event(EventKind::LogBackup {
            database: database.clone(),
            truncated_to: to,
        });
        Ok(())
    }

    // ----- the instance's automatic backups ---------------------------------------------------

    /// Schedules the instance's next full backup of `database` within the first-backup delay.
    pub(crate) fn schedule_first_full(&mut self, database: &DatabaseName) {
        let at = self
            .now
            .plus(self.sample(self.config.first_full_backup_delay));
        let now = self.now;
        let s = self
            .instance
            .backup_schedule
            .entry(database.clone())
            .or_default();
        s.next_full = Some(match s.next_full {
            Some(t) if t > now => t.min(at),
            _ => at,
        });
    }

    pub(super) fn run_backups(&mut self, t: Timestamp) {
        let dbs: Vec<DatabaseName> = self.instance.backup_schedule.keys().cloned().collect();
        for db in dbs {
            let Some(d) = self.instance.databases.get(&db) else {
                self.instance.backup_schedule.remove(&db);
                continue;
            };
            let primary = d.link.is_none()
                || d.link
                    .as_ref()
                    .and_then(|l| self.instance.links.get(l))
                    .is_none_or(|l| l.role == ReplicaRole::Primary);
            let eligible =
                d.state == DbState::Online && (primary || self.config.backups_while_secondary);
            let Some(mut sched) = self.instance.backup_schedule.get(&db).cloned() else {
                continue;
            };
            if !eligible {
                continue;
            }
            if let Some(due) = sched.next_full.filter(|d| *d <= t) {
                self.instance.backups.push(BackupRecord {
                    database: db.clone(),
                    kind: BackupKind::Full,
                    finished: due,
                });
                self.events.push(SimEvent {
                    at: due,
                    kind: EventKind::FullBackup {
                        database: db.clone(),
                    },
                });
                sched.next_full = Some(due.plus(self.config.full_backup_interval));
                if sched.next_log.is_none() {
                    sched.next_log = Some(due.plus(self.config.log_backup_interval));
                }
            }
            while let Some(due) = sched.next_log.filter(|d| *d <= t) {
                self.instance.backups.push(BackupRecord {
                    database: db.clone(),
                    kind: BackupKind::Log,
                    finished: due,
                });
                let hold = self.truncation_hold(Side::ManagedInstance, &db);
                if let Some(d) = self.instance.databases.get_mut(&db) {
                    let to = hold.map_or(d.data.end.lsn, |h| h.min(d.data.end.lsn));
                    d.data.truncate_log(to);
                }
                sched.next_log = Some(due.plus(self.config.log_backup_interval));
            }
            self.instance.backup_schedule.insert(db, sched);
        }
    }

    /// The latest full backup of `database` on the instance finished by now.
    pub fn latest_full_backup(&self, database: &DatabaseName) -> Option<Timestamp> {
        self.instance
            .backups
            .iter()
            .filter(|b| &b.database == database && b.kind == BackupKind::Full)
            .map(|b| b.finished)
            .filter(|f| *f <= self.now)
            .max()
    }
}
