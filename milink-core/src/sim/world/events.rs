//! What the world records as notable: the events, each at a virtual time.

use serde::{Deserialize, Serialize};

use crate::lifecycle::{ReplicaRole, Side};
use crate::names::{DatabaseName, LinkName};
use crate::time::Timestamp;

/// Something notable that happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// The two sides of a link connected.
    Connected {
        /// Link.
        link: LinkName,
    },
    /// They disconnected.
    Disconnected {
        /// Link.
        link: LinkName,
        /// Why.
        reason: String,
    },
    /// Seeding (re)started.
    SeedingStarted {
        /// Database.
        database: DatabaseName,
        /// Attempt, from 1.
        attempt: u32,
    },
    /// Seeding was interrupted and will restart from zero.
    SeedingInterrupted {
        /// Database.
        database: DatabaseName,
        /// Percent reached.
        percent: u8,
    },
    /// Seeding finished; the secondary joined.
    SeedingCompleted {
        /// Database.
        database: DatabaseName,
    },
    /// Seeding failed.
    SeedingFailed {
        /// Database.
        database: DatabaseName,
        /// SQL error number.
        code: u32,
    },
    /// A side's role in a link changed.
    RoleChanged {
        /// Link.
        link: LinkName,
        /// Side.
        side: Side,
        /// New role.
        role: ReplicaRole,
    },
    /// A log backup on SQL Server.
    LogBackup {
        /// Database.
        database: DatabaseName,
        /// The log was truncated up to this LSN.
        truncated_to: u128,
    },
    /// An automatic full backup on the managed instance.
    FullBackup {
        /// Database.
        database: DatabaseName,
    },
    /// Transactions were lost: the old primary held them and the surviving primary does not.
    TransactionsLost {
        /// Database.
        database: DatabaseName,
        /// Transactions.
        transactions: u64,
        /// Rows.
        rows: u64,
    },
    /// A demoted old primary undid its divergent transactions.
    TransactionsReverted {
        /// Database.
        database: DatabaseName,
        /// The side that reverted.
        side: Side,
        /// Transactions.
        transactions: u64,
    },
    /// The instance joined a link.
    LinkJoined {
        /// Link.
        link: LinkName,
    },
    /// A link was removed on one side.
    LinkRemoved {
        /// Link.
        link: LinkName,
        /// Side.
        side: Side,
    },
    /// A database on the instance became independent and writable.
    DatabaseIndependent {
        /// Database.
        database: DatabaseName,
    },
    /// A fault fired.
    Fault {
        /// What.
        description: String,
    },
    /// The network healed.
    NetworkHealed,
    /// A synchronous secondary was not waited for any more (`SESSION_TIMEOUT` passed, or the
    /// link left synchronous commit while commits waited): it falls back to SYNCHRONIZING and the
    /// waiting commits are acknowledged.
    ReplicaFellOutOfSync {
        /// Link.
        link: LinkName,
        /// Waiting commits acknowledged at that moment.
        released: u64,
    },
    /// SQL Server's replica was set to SECONDARY while the instance was secondary too: nothing
    /// accepts writes or ships until one side becomes primary.
    Fenced {
        /// Link.
        link: LinkName,
    },
}

/// An event at a virtual time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimEvent {
    /// When.
    pub at: Timestamp,
    /// What.
    pub kind: EventKind,
}
