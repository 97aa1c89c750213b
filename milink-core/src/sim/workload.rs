//! The data a simulated database holds and the workload that writes to it: tables with row
//! counts and order-independent checksums, a transaction log with LSNs, and the per-table parity
//! check between SQL Server and the managed instance.
//!
//! A row is never materialised: each committed row contributes a 64-bit hash, and a table's
//! checksum is the wrapping sum of its rows' hashes, so the same set of rows gives the same
//! checksum in any order and a missing or extra row changes it.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::lifecycle::Side;
use crate::names::{DatabaseName, Lsn};
use crate::time::Timestamp;

/// Bytes in one virtual log file of the simulated log (decides the LSN's high part).
pub(crate) const VLF_BYTES: u64 = 64 * 1024 * 1024;
/// The smallest transaction log record, so every commit gets a new log block.
pub(crate) const MIN_TXN_BYTES: u32 = 600;

/// SplitMix64: a fast, well-mixed 64-bit hash step.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The hash of one row: its table, id and payload.
pub(crate) fn row_hash(table: usize, id: u64, payload: u64) -> u64 {
    mix(mix(mix(table as u64) ^ id) ^ payload)
}

/// One table: how many rows and their checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableState {
    /// Schema-qualified name, e.g. `dbo.Orders`.
    pub name: String,
    /// Committed rows.
    pub rows: u64,
    /// Wrapping sum of the rows' hashes.
    pub checksum: u64,
}

/// One committed transaction as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    /// World-unique id, given at commit (the same on every copy the transaction reaches).
    pub id: u64,
    /// Committed by the application (a client), not by a system task of the server.
    pub application: bool,
    /// The commit's LSN (numeric(25,0) value).
    pub lsn: u128,
    /// The log offset just after this record (decides the next LSN).
    pub end_offset: u64,
    /// Log bytes of the record.
    pub bytes: u32,
    /// When it committed on the primary.
    pub committed: Timestamp,
    /// Inserted rows: (table index, row hash).
    pub rows: Vec<(u16, u64)>,
}

/// A point in a database's log: the last LSN, the offset after it and its commit time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPoint {
    /// LSN of the last record (the base LSN when the log is empty).
    pub lsn: u128,
    /// Offset just after the last record.
    pub offset: u64,
    /// Commit time of the last record, if any record was committed.
    pub committed: Option<Timestamp>,
}

/// What a copy of a database remembers of one transaction it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldTxn {
    /// Rows it inserted.
    pub rows: u32,
    /// Committed by the application.
    pub application: bool,
}

/// The content of one copy of a database: tables and the log since the last truncation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbData {
    /// Tables, in a fixed order shared by every copy of the database.
    pub tables: Vec<TableState>,
    /// Log records after the truncation point, ordered by LSN.
    pub log: VecDeque<Txn>,
    /// The end of the log (last hardened record on this copy).
    pub end: LogPoint,
    /// The VLF sequence number the log started at (the LSN's high part).
    pub vlf_base: u64,
    /// Log records up to this LSN are gone (log backup or checkpoint truncation).
    pub truncated_to: u128,
    /// The transactions (by id) whose effects this copy holds, whether or not their log records
    /// are still in `log`. Rows present at the start carry no id. Ids that every copy of the
    /// database holds may be forgotten by all copies together to bound memory; what one copy
    /// holds and another lacks is never forgotten.
    #[serde(default)]
    pub held: BTreeMap<u64, HeldTxn>,
}

impl DbData {
    /// A database with the given tables, each holding `rows` initial rows.
    pub(crate) fn with_tables(tables: &[(String, u64)], vlf_base: u64, salt: u64) -> Self {
        let tables = tables
            .iter()
            .enumerate()
            .map(|(i, (name, rows))| {
                // The initial rows are never shipped or undone one by one, so their checksum
                // only has to be a deterministic function of the table's content.
                let checksum = row_hash(i, *rows, mix(salt));
                TableState {
                    name: name.clone(),
                    rows: *rows,
                    checksum,
                }
            })
            .collect();
        let offset = 8192;
        let end = LogPoint {
            lsn: lsn_at(vlf_base, offset),
            offset,
            committed: None,
        };
        DbData {
            tables,
            log: VecDeque::new(),
            end,
            vlf_base,
            truncated_to: end.lsn,
            held: BTreeMap::new(),
        }
    }

    /// A copy of the tables and log position without the log records (what a full backup
    /// carries for seeding).
    pub(crate) fn image(&self) -> DbData {
        DbData {
            tables: self.tables.clone(),
            log: VecDeque::new(),
            end: self.end,
            vlf_base: self.vlf_base,
            truncated_to: self.end.lsn,
            held: self.held.clone(),
        }
    }

    /// A copy being restored from `image`: no tables, no transactions, its log positioned at the
    /// image's end.
    pub(crate) fn restoring(image: &DbData) -> DbData {
        DbData {
            tables: Vec::new(),
            log: VecDeque::new(),
            end: image.end,
            vlf_base: image.vlf_base,
            truncated_to: image.end.lsn,
            held: BTreeMap::new(),
        }
    }

    /// Total committed rows.
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    /// The end-of-log LSN.
    pub fn end_lsn(&self) -> Option<Lsn> {
        Lsn::new(self.end.lsn).ok()
    }

    /// Builds the next transaction on this copy (does not apply it).
    pub(crate) fn next_txn(
        &self,
        id: u64,
        application: bool,
        committed: Timestamp,
        rows: Vec<(u16, u64)>,
        bytes: u32,
    ) -> Txn {
        let bytes = bytes.max(MIN_TXN_BYTES);
        let end_offset = self.end.offset + u64::from(bytes);
        Txn {
            id,
            application,
            lsn: lsn_at(self.vlf_base, end_offset),
            end_offset,
            bytes,
            committed,
            rows,
        }
    }

    /// Applies a committed transaction: rows into tables, record into the log.
    pub(crate) fn apply(&mut self, txn: Txn) {
        for (table, hash) in &txn.rows {
            if let Some(t) = self.tables.get_mut(usize::from(*table)) {
                t.rows += 1;
                t.checksum = t.checksum.wrapping_add(*hash);
            }
        }
        self.end = LogPoint {
            lsn: txn.lsn,
            offset: txn.end_offset,
            committed: Some(txn.committed),
        };
        self.held.insert(
            txn.id,
            HeldTxn {
                rows: u32::try_from(txn.rows.len()).unwrap_or(u32::MAX),
                application: txn.application,
            },
        );
        self.log.push_back(txn);
    }

    /// Removes every record after `point` (a reverting secondary, or a lost tail), undoing its
    /// rows. Returns how many transactions were removed.
    pub(crate) fn revert_to(&mut self, point: LogPoint) -> u64 {
        let mut removed = 0;
        while self.log.back().is_some_and(|t| t.lsn > point.lsn) {
            if let Some(txn) = self.log.pop_back() {
                self.held.remove(&txn.id);
                for (table, hash) in &txn.rows {
                    if let Some(t) = self.tables.get_mut(usize::from(*table)) {
                        t.rows = t.rows.saturating_sub(1);
                        t.checksum = t.checksum.wrapping_sub(*hash);
                    }
                }
                removed += 1;
            }
        }
        if self.end.lsn > point.lsn {
            self.end = point;
        }
        removed
    }

    /// Log records after `lsn`, oldest first.
    pub(crate) fn log_after(&self, lsn: u128) -> impl Iterator<Item = &Txn> {
        let start = self.log.partition_point(|t| t.lsn <= lsn);
        self.log.range(start..)
    }

    /// Drops log records up to and including `lsn` (log truncation).
    pub(crate) fn truncate_log(&mut self, lsn: u128) {
        while self.log.front().is_some_and(|t| t.lsn <= lsn) {
            self.log.pop_front();
        }
        self.truncated_to = self.truncated_to.max(lsn);
    }

    /// Forgets log records up to `lsn` that nothing in the simulation can need any more (they
    /// are on every copy). Unlike [`DbData::truncate_log`] this is not a log backup: the log's
    /// logical truncation point stays where it is.
    pub(crate) fn compact(&mut self, lsn: u128) {
        while self.log.front().is_some_and(|t| t.lsn <= lsn) {
            self.log.pop_front();
        }
    }

    /// Whether this copy holds the transaction `id`.
    pub fn holds(&self, id: u64) -> bool {
        self.held.contains_key(&id)
    }

    /// The transactions this copy holds that `other` does not, oldest first.
    pub fn missing_from<'a>(
        &'a self,
        other: &'a DbData,
    ) -> impl Iterator<Item = (u64, HeldTxn)> + 'a {
        self.held
            .iter()
            .filter(|(id, _)| !other.held.contains_key(id))
            .map(|(id, t)| (*id, *t))
    }

    /// Forgets, on both copies, the transactions both hold (they cannot be missing from either).
    /// Returns how many ids each copy forgot.
    pub(crate) fn forget_common(a: &mut DbData, b: &mut DbData) -> usize {
        let common: Vec<u64> = if a.held.len() <= b.held.len() {
            a.held
                .keys()
                .filter(|id| b.held.contains_key(id))
                .copied()
                .collect()
        } else {
            b.held
                .keys()
                .filter(|id| a.held.contains_key(id))
                .copied()
                .collect()
        };
        for id in &common {
            a.held.remove(id);
            b.held.remove(id);
        }
        common.len()
    }

    /// The log bytes not yet sent after `lsn`.
    pub(crate) fn bytes_after(&self, lsn: u128) -> u64 {
        self.log_after(lsn).map(|t| u64::from(t.bytes)).sum()
    }
}

/// The LSN of the log block at `offset`: VLF sequence, block number and slot, as SQL Server
/// prints them in numeric(25,0) form (`vlf * 10^15 + block * 10^5 + slot`).
pub(crate) fn lsn_at(vlf_base: u64, offset: u64) -> u128 {
    let vlf = u128::from(vlf_base + offset / VLF_BYTES);
    let block = u128::from((offset % VLF_BYTES) / 512);
    vlf * 1_000_000_000_000_000 + block * 100_000 + 1
}

/// A running application workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadSpec {
    /// The database it writes to.
    pub database: DatabaseName,
    /// The side the application is connected to.
    pub target: Side,
    /// Mean commits per second (exponential inter-arrival times).
    pub transactions_per_second: f64,
    /// Rows per transaction, at most (at least one).
    pub max_rows_per_transaction: u32,
}

/// What the workload did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadStats {
    /// Committed transactions.
    pub committed: u64,
    /// Committed rows.
    pub rows: u64,
    /// Writes refused (the target was not writable).
    pub refused: u64,
    /// The code and message of the last refusal.
    pub last_refusal: Option<String>,
    /// Application commits (the workload's, single writes and held-open transactions) the
    /// application was told succeeded: at once, or once the synchronous secondary hardened them
    /// (or the primary stopped waiting for it).
    #[serde(default)]
    pub acknowledged: u64,
    /// Application commits waiting now for the synchronous secondary to harden them.
    #[serde(default)]
    pub awaiting_acknowledgement: u64,
    /// Application commits never acknowledged: a role change or fence ended their wait and the
    /// application saw an error (the transaction may still be in the data).
    #[serde(default)]
    pub unacknowledged: u64,
}

/// The workload's state in the world.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Workload {
    pub(crate) spec: WorkloadSpec,
    pub(crate) next_commit: Timestamp,
    pub(crate) running: bool,
    /// The application stops by itself at this time (its last commit is before it).
    #[serde(default)]
    pub(crate) until: Option<Timestamp>,
}

/// A copy of a database's tables at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbSnapshot {
    /// The side the copy lives on.
    pub side: Side,
    /// Database.
    pub database: DatabaseName,
    /// Tables.
    pub tables: Vec<TableState>,
    /// The end-of-log LSN of the copy.
    pub end_lsn: u128,
}

/// One table compared on both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableParity {
    /// Table name.
    pub table: String,
    /// Rows on the reference side.
    pub expected_rows: u64,
    /// Checksum on the reference side.
    pub expected_checksum: u64,
    /// Rows on the compared side (0 if the table is missing).
    pub actual_rows: u64,
    /// Checksum on the compared side.
    pub actual_checksum: u64,
}

impl TableParity {
    /// Counts and checksums are equal.
    pub fn matches(&self) -> bool {
        self.expected_rows == self.actual_rows && self.expected_checksum == self.actual_checksum
    }
}

/// Per-table comparison of two copies of a database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParityReport {
    /// Database.
    pub database: DatabaseName,
    /// The side whose data is expected (e.g. SQL Server before the failover).
    pub expected: Side,
    /// The side compared against it.
    pub actual: Side,
    /// Per table.
    pub tables: Vec<TableParity>,
}

impl ParityReport {
    /// Every table matches.
    pub fn all_match(&self) -> bool {
        !self.tables.is_empty() && self.tables.iter().all(TableParity::matches)
    }

    /// Compares a reference snapshot with another copy.
    pub fn compare(expected: &DbSnapshot, actual: &DbSnapshot) -> ParityReport {
        let tables = expected
            .tables
            .iter()
            .map(|e| {
                let a = actual.tables.iter().find(|t| t.name == e.name);
                TableParity {
                    table: e.name.clone(),
                    expected_rows: e.rows,
                    expected_checksum: e.checksum,
                    actual_rows: a.map_or(0, |t| t.rows),
                    actual_checksum: a.map_or(0, |t| t.checksum),
                }
            })
            .collect();
        ParityReport {
            database: expected.database.clone(),
            expected: expected.side,
            actual: actual.side,
            tables,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> DbData {
        DbData::with_tables(&[("dbo.A".into(), 10), ("dbo.B".into(), 3)], 40, 7)
    }

    #[test]
    fn checksums_are_order_independent_and_revert_exactly() {
        let mut a = db();
        let mut b = db();
        let t1 = a.next_txn(
            1,
            true,
            Timestamp::from_millis(1),
            vec![(0, 11), (1, 22)],
            700,
        );
        a.apply(t1.clone());
        let t2 = a.next_txn(2, true, Timestamp::from_millis(2), vec![(0, 33)], 700);
        a.apply(t2.clone());
        // Same rows applied in another order give the same checksums.
        let mut t2b = t2.clone();
        t2b.lsn = t1.lsn;
        let mut t1b = t1.clone();
        t1b.lsn = t2.lsn;
        b.apply(t2b);
        b.apply(t1b);
        assert_eq!(a.tables, b.tables);
        let before = db();
        assert_eq!(a.revert_to(before.end), 2);
        assert_eq!(a.tables, before.tables);
        assert_eq!(a.end, before.end);
    }

    #[test]
    fn lsns_grow_with_every_commit_and_look_like_sql_server_lsns() {
        let mut a = db();
        let first = a.end.lsn;
        assert_eq!(first, 40_000_000_000_000_000 + 16 * 100_000 + 1);
        let mut last = first;
        for i in 0..200 {
            let t = a.next_txn(i, true, Timestamp::from_millis(i), vec![(0, i)], 600);
            assert!(t.lsn > last);
            last = t.lsn;
            a.apply(t);
        }
        assert_eq!(a.end.lsn, last);
    }

    #[test]
    fn parity_detects_a_missing_row() {
        let mut a = db();
        let b = db();
        let t = a.next_txn(1, true, Timestamp::from_millis(1), vec![(1, 99)], 700);
        a.apply(t);
        let snap = |d: &DbData, side| DbSnapshot {
            side,
            database: DatabaseName::new("X").unwrap(),
            tables: d.tables.clone(),
            end_lsn: d.end.lsn,
        };
        let report =
            ParityReport::compare(&snap(&a, Side::SqlServer), &snap(&b, Side::ManagedInstance));
        assert!(!report.all_match());
        assert!(report.tables[0].matches());
        assert!(!report.tables[1].matches());
        assert_eq!(report.tables[1].expected_rows, 4);
        assert_eq!(report.tables[1].actual_rows, 3);
        let same = ParityReport::compare(&snap(&a, Side::SqlServer), &snap(&a, Side::SqlServer));
        assert!(same.all_match());
    }
}
