//! Who is still using the link's databases: the quiet-workload check before a failover.
//!
//! The failover procedures start with "stop the application workload on the primary"
//! (milink-facts §4): a database in an availability group cannot be set READ_ONLY, so the only
//! way to know the workload has stopped is to look at the sessions and transactions on it.
//! [`crate::tsql::probe_workload_activity`] reads them in one round trip.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::names::DatabaseName;
use crate::time::Timestamp;

/// A client session using one of the link's databases (one row per session and database).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSession {
    /// `session_id` (SPID).
    pub session_id: u16,
    /// The database it uses: its current database, or one it holds a transaction in.
    pub database: DatabaseName,
    /// `login_name`.
    pub login: String,
    /// `host_name` as the client reported it.
    pub host: Option<String>,
    /// `program_name` (the connection string's `Application Name`).
    pub program: Option<String>,
    /// `status`: `running`, `sleeping`, …
    pub status: String,
    /// Open transactions of this session in this database.
    pub open_transactions: u32,
    /// When the oldest of them began.
    pub oldest_transaction_start: Option<Timestamp>,
}

/// The client sessions and open transactions on the link's databases.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WorkloadActivity {
    /// Sessions other than milink's own and the system's, ordered by database and session id.
    pub sessions: Vec<ClientSession>,
}

impl WorkloadActivity {
    /// No client is connected to any of the link's databases. Idle connections count: a pooled
    /// connection left open will write again after the failover.
    pub fn is_quiet(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Whether any session holds an open transaction on the link's databases.
    pub fn has_open_transactions(&self) -> bool {
        self.sessions.iter().any(|s| s.open_transactions > 0)
    }

    /// Open transactions in all.
    pub fn open_transactions(&self) -> u32 {
        self.sessions.iter().map(|s| s.open_transactions).sum()
    }

    /// A human summary of who is still connected, one line per session.
    pub fn summary(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for WorkloadActivity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_quiet() {
            return f.write_str("quiet: no client sessions on the link's databases");
        }
        let n = self.sessions.len();
        write!(
            f,
            "not quiet: {n} client session{} on the link's databases, {} open transaction{}",
            if n == 1 { "" } else { "s" },
            self.open_transactions(),
            if self.open_transactions() == 1 {
                ""
            } else {
                "s"
            },
        )?;
        for s in &self.sessions {
            write!(
                f,
                "\n  {}: session {} login {} from {} ({}), {}",
                s.database,
                s.session_id,
                s.login,
                s.host.as_deref().unwrap_or("unknown host"),
                s.program.as_deref().unwrap_or("unknown program"),
                s.status,
            )?;
            match (s.open_transactions, s.oldest_transaction_start) {
                (0, _) => {}
                (t, Some(since)) => write!(
                    f,
                    ", {t} open transaction{} since {since}",
                    if t == 1 { "" } else { "s" }
                )?,
                (t, None) => write!(f, ", {t} open transaction{}", if t == 1 { "" } else { "s" })?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: u16, db: &str, tx: u32) -> ClientSession {
        ClientSession {
            session_id: id,
            database: DatabaseName::new(db).unwrap(),
            login: "tailspin_app".to_owned(),
            host: Some("WEB01".to_owned()),
            program: Some("Tailspin.Web".to_owned()),
            status: "sleeping".to_owned(),
            open_transactions: tx,
            oldest_transaction_start: (tx > 0).then_some(Timestamp::from_millis(86_400_000)),
        }
    }

    #[test]
    fn quiet_means_no_client_sessions_at_all() {
        let quiet = WorkloadActivity::default();
        assert!(quiet.is_quiet());
        assert_eq!(
            quiet.summary(),
            "quiet: no client sessions on the link's databases"
        );
        let idle = WorkloadActivity {
            sessions: vec![session(57, "ToyStore", 0)],
        };
        assert!(!idle.is_quiet(), "an idle pooled connection is not quiet");
        assert!(!idle.has_open_transactions());
    }

    #[test]
    fn summary_says_who_is_connected() {
        let busy = WorkloadActivity {
            sessions: vec![session(57, "ToyStore", 2), session(61, "ToyStore", 0)],
        };
        assert_eq!(busy.open_transactions(), 2);
        assert_eq!(
            busy.summary(),
            "not quiet: 2 client sessions on the link's databases, 2 open transactions\n  \
             ToyStore: session 57 login tailspin_app from WEB01 (Tailspin.Web), sleeping, \
             2 open transactions since 1970-01-02T00:00:00.000Z\n  \
             ToyStore: session 61 login tailspin_app from WEB01 (Tailspin.Web), sleeping"
        );
    }
}
