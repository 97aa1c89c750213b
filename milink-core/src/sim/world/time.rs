//! Virtual time (how the world steps forward) and the calls into it, with their faults.

use super::*;
use crate::sim::faults::{InstanceCall, SourceCall};

impl World {
    // ----- time -------------------------------------------------------------------------------

    /// Runs the world up to `target`.
    pub fn advance_to(&mut self, target: Timestamp) {
        while self.now < target {
            let next = self.next_stop(target);
            self.step_to(next);
        }
    }

    fn is_active(&self) -> bool {
        if self.workload.as_ref().is_some_and(|w| w.running) {
            return true;
        }
        self.replications.values().any(|r| {
            r.databases.values().any(|d| match &d.phase {
                ReplicaPhase::WaitingToSeed | ReplicaPhase::Seeding(_) => true,
                ReplicaPhase::Synchronizing => !d.in_flight.is_empty(),
                ReplicaPhase::Failed { .. } => false,
            }) || !r.connected
        }) || self.has_unsent_log()
    }

    fn has_unsent_log(&self) -> bool {
        self.replications.iter().any(|(link, r)| {
            let Some(p) = self.primary_of(link) else {
                return false;
            };
            r.connected
                && r.databases.iter().any(|(db, d)| {
                    matches!(d.phase, ReplicaPhase::Synchronizing)
                        && self
                            .database(p, db)
                            .is_some_and(|data| data.end.lsn > d.sent_upto)
                })
        })
    }

    fn next_stop(&self, target: Timestamp) -> Timestamp {
        let now = self.now;
        let mut next = target;
        if self.is_active() {
            next = next.min(now.plus(ACTIVE_STEP));
        }
        let mut candidates: Vec<Option<Timestamp>> = vec![
            self.faults.next_time(now),
            self.network.partitioned_until,
            self.next_source_log_backup,
            self.next_background_log,
        ];
        candidates.extend(self.open_transactions.iter().map(|o| Some(o.ends_at)));
        candidates.extend(self.commit_deadlines().into_iter().map(Some));
        candidates.extend(
            self.replications
                .values()
                .flat_map(|r| r.databases.values())
                .map(|d| d.reverting_until),
        );
        candidates.extend(
            self.instance
                .operations
                .values()
                .filter(|o| o.outcome.is_none())
                .map(|o| Some(o.completes_at)),
        );
        candidates.extend(self.replications.values().map(|r| Some(r.connect_at)));
        for s in self.instance.backup_schedule.values() {
            candidates.push(s.next_full);
            candidates.push(s.next_log);
        }
        for t in candidates.into_iter().flatten() {
            if t > now {
                next = next.min(t);
            }
        }
        next.max(now.plus(Duration::from_millis(1))).min(target)
    }

    fn step_to(&mut self, t: Timestamp) {
        let t0 = self.now;
        // What ARM reports is read from what the world was (see `arm_view`).
        self.record_arm_readings();
        self.run_workload(t);
        self.now = t;
        self.finish_open_transactions(t);
        self.run_background_log(t);
        for f in self.faults.due_at(t) {
            self.apply_fault(&f);
        }
        if self.network.partitioned_until.is_some_and(|u| u <= t) {
            self.network.partitioned_until = None;
            self.event(EventKind::NetworkHealed);
        }
        if let Some(due) = self.next_source_log_backup
            && due <= t
        {
            let dbs: Vec<DatabaseName> = self.source.databases.keys().cloned().collect();
            for db in dbs {
                // Scheduled jobs skip databases that cannot take a log backup.
                let _ = self.source_log_backup(&db);
            }
            self.next_source_log_backup =
                self.config.source_log_backup_interval.map(|i| due.plus(i));
        }
        self.complete_due_operations();
        self.update_replications(t0, t);
        self.check_commit_timeouts();
        self.run_backups(t);
        self.compact_logs();
        self.prune_held();
    }

    /// Keeps memory bounded: log records that every copy has hardened are dropped once a log
    /// holds more than a few of them (nothing reads a record at or before the common point:
    /// shipping, lag, reverts and seeding all read after it). A world per link, a thousand
    /// links in one process (the fleet bench), must not keep minutes of log each.
    fn compact_logs(&mut self) {
        const KEEP: usize = 64;
        for side in [Side::SqlServer, Side::ManagedInstance] {
            let dbs: Vec<DatabaseName> = match side {
                Side::SqlServer => self.source.databases.keys().cloned().collect(),
                Side::ManagedInstance => self.instance.databases.keys().cloned().collect(),
            };
            for db in dbs {
                if self.database(side, &db).is_none_or(|d| d.log.len() < KEEP) {
                    continue;
                }
                let needed = self
                    .replications
                    .values()
                    .filter_map(|r| r.databases.get(&db))
                    .map(|d| match &d.phase {
                        ReplicaPhase::Seeding(s) => s.start.lsn.min(d.common.lsn),
                        _ => d.common.lsn,
                    })
                    .min();
                if let Some(d) = self.database_mut(side, &db) {
                    let keep = needed.unwrap_or(d.end.lsn).min(d.end.lsn);
                    d.compact(keep);
                }
            }
        }
    }

    // ----- calls and faults -------------------------------------------------------------------

    /// Counts a port call, fires the faults it triggers and lets the call's latency pass.
    pub(crate) fn enter_call(
        &mut self,
        call: Call,
        latency: DurationRange,
    ) -> Result<CallFate, PortError> {
        let (world, hit) = self.faults.on_call_made(call);
        for f in &world {
            self.apply_fault(f);
        }
        if matches!(
            call,
            Call::Source(SourceCall::Failover | SourceCall::ForceFailover)
                | Call::Instance(InstanceCall::Failover | InstanceCall::SetRole)
        ) {
            self.stats.last_role_change_requested = Some(self.now);
        }
        let d = self.sample(latency);
        let target = self.now.plus(d);
        self.advance_to(target);
        let Some(fault) = hit else {
            return Ok(CallFate {
                lose_response: false,
            });
        };
        self.stats.faults_fired += 1;
        self.event(EventKind::Fault {
            description: format!("{} on {call:?}", fault.describe()),
        });
        match fault {
            Fault::Throttle { retry_after } => Err(errors::arm_throttled(retry_after)),
            Fault::ServerError { status } => Err(errors::arm_server_error(status)),
            Fault::Busy => Err(errors::arm_busy(self.config.arm.retry_after)),
            Fault::ConnectionDrop => Err(errors::connection_dropped()),
            Fault::Fail(e) => Err(e.into()),
            Fault::LostResponse => Ok(CallFate {
                lose_response: true,
            }),
            Fault::Partition { .. } | Fault::LogBackup { .. } => Ok(CallFate {
                lose_response: false,
            }),
        }
    }

    /// Applies a world fault now (call faults are armed for the next call they can hit).
    pub(crate) fn apply_fault(&mut self, fault: &Fault) {
        match fault {
            Fault::Partition { duration } => {
                let until = self.now.plus(*duration);
                self.network.partitioned_until = Some(
                    self.network
                        .partitioned_until
                        .map_or(until, |u| u.max(until)),
                );
                self.stats.faults_fired += 1;
                self.event(EventKind::Fault {
                    description: fault.describe(),
                });
            }
            Fault::LogBackup { database } => {
                self.stats.faults_fired += 1;
                self.event(EventKind::Fault {
                    description: fault.describe(),
                });
                // A backup the recovery model refuses is simply not taken.
                let _ = self.source_log_backup(database);
            }
            other => self.faults.armed.push(other.clone()),
        }
    }
}
