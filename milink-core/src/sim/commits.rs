//! Commit acknowledgement and data loss, counted by what the copies of a database hold.
//!
//! Every committed transaction has a world-unique id and every copy of a database knows which
//! ids it holds ([`DbData::held`](super::workload::DbData::held)). An application's commit is
//! acknowledged at once unless the link is in synchronous commit (both replicas of SQL Server's
//! distributed availability group *and* the instance's `replicationMode`) and the secondary is
//! SYNCHRONIZED: then the acknowledgement waits until the secondary hardens the transaction. A
//! commit that waits longer than the DAG's `SESSION_TIMEOUT` makes the primary give up on the
//! secondary (it falls back to SYNCHRONIZING) and acknowledges every waiting commit; a role change
//! or a fence ends the wait with an error instead.
//!
//! At every role change and every removal of the link, the transactions the old primary holds
//! and the surviving primary does not are counted lost, once each ([`World::missing_transactions`] tells what one copy lacks).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::lifecycle::{AvailabilityMode, ReplicaRole, Side};
use crate::names::{DatabaseName, LinkName, Lsn};
use crate::time::Timestamp;

use super::workload::DbData;
use super::world::{EventKind, ReplicaPhase, World};

/// Ids every copy of a database holds are forgotten (on both copies together) once the copies
/// hold more than this many ids between them.
const HELD_PRUNE_AT: usize = 256;

/// One application commit waiting for the synchronous secondary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldCommit {
    /// The side it committed on (the primary).
    pub side: Side,
    /// Database.
    pub database: DatabaseName,
    /// The link whose secondary must harden it.
    pub link: LinkName,
    /// When it committed on the primary.
    pub since: Timestamp,
}

/// Where an application's commit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommitStatus {
    /// The application was told the transaction committed.
    Acknowledged,
    /// The commit waits for the synchronous secondary to harden it.
    Awaiting,
    /// A role change or fence ended the wait: the application saw an error, although the
    /// transaction may be in the data.
    Unacknowledged,
}

/// An application commit, as [`World::commit_transaction`] returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    /// The transaction's world-unique id.
    pub id: u64,
    /// Its commit LSN.
    pub lsn: Lsn,
    /// Where its acknowledgement stands right after the commit.
    pub status: CommitStatus,
}

/// The world's book of commits: ids, acknowledgements waiting, and what was counted lost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitBook {
    /// The last transaction id given (ids start at 1).
    pub last_id: u64,
    /// Application commits waiting for the secondary, by transaction id.
    pub held: BTreeMap<u64, HeldCommit>,
    /// Application commits whose wait a role change or fence ended.
    pub unacknowledged: BTreeSet<u64>,
    /// Transactions already counted lost (each is counted once).
    pub counted_lost: BTreeSet<u64>,
    /// Transactions counted lost while their commit was still waiting: if the wait ends in an
    /// acknowledgement, the application was told a lost transaction committed.
    pub lost_while_waiting: BTreeMap<u64, DatabaseName>,
    /// Databases whose link the instance removed while SQL Server was still the primary of its
    /// distributed availability group: the instance owns them now, and every commit on SQL
    /// Server's copy can never reach it.
    pub orphaned: BTreeMap<DatabaseName, LinkName>,
    /// Per database, how many ids both copies held between them after they last forgot the ids
    /// they share.
    pub held_marks: BTreeMap<DatabaseName, usize>,
}

impl World {
    /// The next world-unique transaction id.
    pub(crate) fn next_txn_id(&mut self) -> u64 {
        self.commits.last_id += 1;
        self.commits.last_id
    }

    /// The mode commits on `link` really run in: synchronous only when SQL Server's distributed
    /// availability group has both replicas in `SYNCHRONOUS_COMMIT` and the instance's link
    /// resource has `replicationMode` synchronous. `None` while either side lacks the link.
    pub fn effective_mode(&self, link: &LinkName) -> Option<AvailabilityMode> {
        let dag = self.source.dags.get(link)?;
        let mi = self.instance.links.get(link)?;
        let sync = AvailabilityMode::SynchronousCommit;
        Some(
            if dag.sql_mode == sync && dag.mi_mode == sync && mi.replication_mode == sync {
                sync
            } else {
                AvailabilityMode::AsynchronousCommit
            },
        )
    }

    /// Transactions (and their rows) that `from`'s copy of `database` holds and `to`'s copy does
    /// not. `(0, 0)` when either copy does not exist.
    pub fn missing_transactions(
        &self,
        database: &DatabaseName,
        from: Side,
        to: Side,
    ) -> (u64, u64) {
        match (self.database(from, database), self.database(to, database)) {
            (Some(f), Some(t)) => f
                .missing_from(t)
                .fold((0, 0), |(n, r), (_, h)| (n + 1, r + u64::from(h.rows))),
            _ => (0, 0),
        }
    }

    /// Where the application's commit `id` stands (`None` for an id never given, or a system
    /// transaction's).
    pub fn commit_status(&self, id: u64) -> Option<CommitStatus> {
        if id == 0 || id > self.commits.last_id {
            return None;
        }
        Some(if self.commits.held.contains_key(&id) {
            CommitStatus::Awaiting
        } else if self.commits.unacknowledged.contains(&id) {
            CommitStatus::Unacknowledged
        } else {
            CommitStatus::Acknowledged
        })
    }

    /// Records an application commit just applied on `side`: acknowledged at once, or held for
    /// the synchronous secondary. A commit on SQL Server's copy of a database the instance now
    /// owns is lost as it commits.
    pub(crate) fn register_app_commit(
        &mut self,
        side: Side,
        database: &DatabaseName,
        id: u64,
        rows: u32,
        at: Timestamp,
    ) -> CommitStatus {
        let waits_for = self
            .replications
            .iter()
            .find(|(link, r)| {
                self.role(side, link) == Some(ReplicaRole::Primary)
                    && self.effective_mode(link) == Some(AvailabilityMode::SynchronousCommit)
                    && r.databases.get(database).is_some_and(|d| {
                        matches!(d.phase, ReplicaPhase::Synchronizing) && d.synchronized
                    })
            })
            .map(|(link, _)| link.clone());
        let status = match waits_for {
            Some(link) => {
                self.commits.held.insert(
                    id,
                    HeldCommit {
                        side,
                        database: database.clone(),
                        link,
                        since: at,
                    },
                );
                self.workload_stats.awaiting_acknowledgement += 1;
                CommitStatus::Awaiting
            }
            None => {
                self.workload_stats.acknowledged += 1;
                CommitStatus::Acknowledged
            }
        };
        let orphan = side == Side::SqlServer
            && self.commits.orphaned.get(database).is_some_and(|link| {
                self.source
                    .dags
                    .get(link)
                    .is_some_and(|d| d.role == ReplicaRole::Primary)
            });
        if orphan {
            self.record_loss(database, &[(id, rows, true)]);
        }
        status
    }

    /// The secondary hardened transaction `id`: a commit waiting for it is acknowledged.
    pub(crate) fn harden(&mut self, id: u64) {
        if self.commits.held.contains_key(&id) {
            self.acknowledge(id);
        }
    }

    fn acknowledge(&mut self, id: u64) {
        if self.commits.held.remove(&id).is_none() {
            return;
        }
        self.workload_stats.awaiting_acknowledgement = self
            .workload_stats
            .awaiting_acknowledgement
            .saturating_sub(1);
        self.workload_stats.acknowledged += 1;
        if let Some(db) = self.commits.lost_while_waiting.remove(&id) {
            *self
                .stats
                .lost_acknowledged_transactions
                .entry(db)
                .or_insert(0) += 1;
        }
    }

    /// A role change or fence on `side` ends the wait of its commits on `link` with an error.
    pub(crate) fn end_held_commits(&mut self, side: Side, link: &LinkName) {
        let ended: Vec<u64> = self
            .commits
            .held
            .iter()
            .filter(|(_, h)| h.side == side && &h.link == link)
            .map(|(id, _)| *id)
            .collect();
        for id in ended {
            self.commits.held.remove(&id);
            self.commits.lost_while_waiting.remove(&id);
            self.commits.unacknowledged.insert(id);
            self.workload_stats.awaiting_acknowledgement = self
                .workload_stats
                .awaiting_acknowledgement
                .saturating_sub(1);
            self.workload_stats.unacknowledged += 1;
        }
    }

    /// Acknowledges every commit waiting on `link` (the primary stopped waiting for it).
    fn release_held_commits(&mut self, link: &LinkName) -> u64 {
        let ids: Vec<u64> = self
            .commits
            .held
            .iter()
            .filter(|(_, h)| &h.link == link)
            .map(|(id, _)| *id)
            .collect();
        let n = ids.len() as u64;
        for id in ids {
            self.acknowledge(id);
        }
        n
    }

    fn session_timeout(&self, link: &LinkName) -> Option<std::time::Duration> {
        self.source
            .dags
            .get(link)
            .map(|d| std::time::Duration::from_secs(u64::from(d.session_timeout_s)))
    }

    /// When the next `SESSION_TIMEOUT` expires: the oldest waiting commit of a link, or a
    /// disconnected replica that still counts as synchronized.
    pub(crate) fn commit_deadlines(&self) -> Vec<Timestamp> {
        let mut out = Vec::new();
        let mut oldest: BTreeMap<&LinkName, Timestamp> = BTreeMap::new();
        for h in self.commits.held.values() {
            let e = oldest.entry(&h.link).or_insert(h.since);
            *e = (*e).min(h.since);
        }
        for (link, since) in oldest {
            if let Some(t) = self.session_timeout(link) {
                out.push(since.plus(t));
            }
        }
        for (link, r) in &self.replications {
            if let (Some(at), Some(t)) = (r.disconnected_at, self.session_timeout(link))
                && r.databases.values().any(|d| d.synchronized)
            {
                out.push(at.plus(t));
            }
        }
        out
    }

    /// SQL Server's fallback: a synchronous secondary that has not answered for the DAG's
    /// `SESSION_TIMEOUT` is no longer waited for. It falls back to SYNCHRONIZING and every
    /// commit waiting for it is acknowledged. Commits also stop waiting when the link leaves
    /// synchronous commit, and when SQL Server no longer has the distributed availability group.
    pub(crate) fn check_commit_timeouts(&mut self) {
        let now = self.now;
        let links: BTreeSet<LinkName> = self
            .commits
            .held
            .values()
            .map(|h| h.link.clone())
            .chain(self.replications.keys().cloned())
            .collect();
        for link in links {
            let timeout = self.session_timeout(&link);
            let oldest = self
                .commits
                .held
                .values()
                .filter(|h| h.link == link)
                .map(|h| h.since)
                .min();
            let replication = self.replications.get(&link);
            let not_sync = replication.is_some()
                && self.effective_mode(&link) != Some(AvailabilityMode::SynchronousCommit);
            let held_too_long = match (oldest, timeout) {
                (Some(since), Some(t)) => now >= since.plus(t),
                (Some(_), None) => true,
                (None, _) => false,
            };
            let silent_too_long = match (replication, timeout) {
                (Some(r), Some(t)) => {
                    !r.connected
                        && r.disconnected_at.is_some_and(|at| now >= at.plus(t))
                        && r.databases.values().any(|d| d.synchronized)
                }
                _ => false,
            };
            if not_sync {
                self.release_held_commits(&link);
                continue;
            }
            if held_too_long || silent_too_long {
                if let Some(r) = self.replications.get_mut(&link) {
                    for d in r.databases.values_mut() {
                        d.synchronized = false;
                    }
                }
                let released = self.release_held_commits(&link);
                self.event(EventKind::ReplicaFellOutOfSync { link, released });
            }
        }
    }

    /// Counts as lost the transactions `from`'s copy of `database` holds that `to`'s copy (the
    /// surviving primary) does not, each once.
    pub(crate) fn count_loss(&mut self, database: &DatabaseName, from: Side, to: Side) {
        let lost: Vec<(u64, u32, bool)> =
            match (self.database(from, database), self.database(to, database)) {
                (Some(f), Some(t)) => f
                    .missing_from(t)
                    .filter(|(id, _)| !self.commits.counted_lost.contains(id))
                    .map(|(id, h)| (id, h.rows, h.application))
                    .collect(),
                _ => Vec::new(),
            };
        self.record_loss(database, &lost);
    }

    /// Adds lost transactions `(id, rows, application)` to the counters.
    fn record_loss(&mut self, database: &DatabaseName, lost: &[(u64, u32, bool)]) {
        if lost.is_empty() {
            return;
        }
        let txns = lost.len() as u64;
        let rows: u64 = lost.iter().map(|(_, r, _)| u64::from(*r)).sum();
        let mut acknowledged = 0u64;
        for (id, _, application) in lost {
            self.commits.counted_lost.insert(*id);
            if !application {
                continue;
            }
            match self.commit_status(*id) {
                Some(CommitStatus::Acknowledged) => acknowledged += 1,
                Some(CommitStatus::Awaiting) => {
                    self.commits
                        .lost_while_waiting
                        .insert(*id, database.clone());
                }
                Some(CommitStatus::Unacknowledged) | None => {}
            }
        }
        *self
            .stats
            .lost_transactions
            .entry(database.clone())
            .or_insert(0) += txns;
        *self.stats.lost_rows.entry(database.clone()).or_insert(0) += rows;
        *self
            .stats
            .lost_acknowledged_transactions
            .entry(database.clone())
            .or_insert(0) += acknowledged;
        self.event(EventKind::TransactionsLost {
            database: database.clone(),
            transactions: txns,
            rows,
        });
    }

    /// Keeps the held-id sets bounded: once the two copies of a database hold many ids between
    /// them, both forget the ids they share.
    pub(crate) fn prune_held(&mut self) {
        let dbs: Vec<DatabaseName> = self
            .source
            .databases
            .keys()
            .filter(|db| self.instance.databases.contains_key(*db))
            .cloned()
            .collect();
        for db in dbs {
            let total = self
                .database(Side::SqlServer, &db)
                .map_or(0, |d| d.held.len())
                + self
                    .database(Side::ManagedInstance, &db)
                    .map_or(0, |d| d.held.len());
            let mark = self.commits.held_marks.get(&db).copied().unwrap_or(0);
            if total <= HELD_PRUNE_AT.max(mark.saturating_mul(2)) {
                continue;
            }
            let (Some(s), Some(m)) = (
                self.source.databases.get_mut(&db),
                self.instance.databases.get_mut(&db),
            ) else {
                continue;
            };
            let forgot = DbData::forget_common(&mut s.data, &mut m.data);
            self.commits
                .held_marks
                .insert(db, total.saturating_sub(2 * forgot));
        }
    }
}
