//! Ports: the narrow, domain-typed seams between the session driver and the outside world.
//!
//! Real adapters (tiberius for SQL Server, reqwest for ARM) and the simulator implement the same
//! traits, so the driver runs unchanged against either. Ports never expose vendor types; errors
//! keep the vendor's identity in [`PortError::code`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;

use crate::journal::{JournalError, JournalRecord};

use crate::lifecycle::{
    DatabaseView, FullBackup, InstanceOp, LinkName, OperationRef, SideView, SourceOp,
};
use crate::names::{DatabaseName, MiFqdn};
use crate::redirect::WorkloadActivity;

/// The [`PortError::code`] of a call an adapter does not implement.
pub const UNSUPPORTED: &str = "unsupported";

fn workload_unsupported(side: &str) -> PortError {
    PortError::permanent(
        UNSUPPORTED,
        format!(
            "this {side} adapter cannot read workload activity; check the sessions on the \
             link's databases yourself before failing over"
        ),
    )
}

fn arc_unsupported(op: &crate::arc::ArcOp) -> PortError {
    PortError::permanent(
        UNSUPPORTED,
        format!(
            "this SQL Server adapter reaches SQL Server over T-SQL and cannot run Arc's {}; \
             give the link on the Arc route an Arc adapter",
            op.operation_id()
        ),
    )
}

/// What kind of failure a port call met, as the vendor identifies it. Its [`fmt::Display`] is
/// the error's code as the journal and messages show it (`sql:1412`,
/// `arm:409:ManagedInstanceIsBusy`, `http:503`, `io`, `timeout`, `hook`, `unsupported`), and
/// [`PortErrorKind::parse`] reads it back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PortErrorKind {
    /// A SQL Server error number (`sql:<number>`).
    Sql(u32),
    /// An ARM error: the HTTP status and the error code of its body (`arm:<status>:<code>`).
    Arm {
        /// HTTP status.
        status: u16,
        /// The ARM error code, e.g. `ManagedInstanceIsBusy`.
        code: String,
    },
    /// An HTTP status without an ARM error body (`http:<status>`).
    Http(u16),
    /// A transport error: refused, reset, name resolution (`io`).
    Io,
    /// No answer in time; the call may or may not have taken effect (`timeout`).
    Timeout,
    /// The application's redirect hook failed (`hook`).
    Hook,
    /// The adapter does not implement the call (`unsupported`).
    Unsupported,
    /// Anything else, by its code (`link:LinkCreationError`, `redirect`, …).
    Other(String),
}

impl PortErrorKind {
    /// Reads a code as [`fmt::Display`] writes it; an unknown shape is [`PortErrorKind::Other`].
    pub fn parse(code: &str) -> PortErrorKind {
        let mut parts = code.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("sql"), Some(n), None) => match n.parse() {
                Ok(number) => PortErrorKind::Sql(number),
                Err(_) => PortErrorKind::Other(code.to_owned()),
            },
            (Some("arm"), Some(status), Some(arm_code)) => match status.parse() {
                Ok(status) => PortErrorKind::Arm {
                    status,
                    code: arm_code.to_owned(),
                },
                Err(_) => PortErrorKind::Other(code.to_owned()),
            },
            (Some("http"), Some(status), None) => match status.parse() {
                Ok(status) => PortErrorKind::Http(status),
                Err(_) => PortErrorKind::Other(code.to_owned()),
            },
            (Some("io"), None, None) => PortErrorKind::Io,
            (Some("timeout"), None, None) => PortErrorKind::Timeout,
            (Some("hook"), None, None) => PortErrorKind::Hook,
            (Some(UNSUPPORTED), None, None) => PortErrorKind::Unsupported,
            _ => PortErrorKind::Other(code.to_owned()),
        }
    }

    /// The HTTP status, for ARM and HTTP errors.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            PortErrorKind::Arm { status, .. } | PortErrorKind::Http(status) => Some(*status),
            PortErrorKind::Sql(_)
            | PortErrorKind::Io
            | PortErrorKind::Timeout
            | PortErrorKind::Hook
            | PortErrorKind::Unsupported
            | PortErrorKind::Other(_) => None,
        }
    }
}

impl fmt::Display for PortErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortErrorKind::Sql(number) => write!(f, "sql:{number}"),
            PortErrorKind::Arm { status, code } => write!(f, "arm:{status}:{code}"),
            PortErrorKind::Http(status) => write!(f, "http:{status}"),
            PortErrorKind::Io => f.write_str("io"),
            PortErrorKind::Timeout => f.write_str("timeout"),
            PortErrorKind::Hook => f.write_str("hook"),
            PortErrorKind::Unsupported => f.write_str(UNSUPPORTED),
            PortErrorKind::Other(code) => f.write_str(code),
        }
    }
}

/// What a port call failed with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct PortError {
    /// What kind of failure, as the vendor identifies it; its Display is the error's code.
    pub kind: PortErrorKind,
    /// What happened, with cause and fix where known. Never contains a secret.
    pub message: String,
    /// Whether retrying the same call may succeed (connection drops, 429, 5xx, 409 busy …).
    pub transient: bool,
    /// How long the remote side asked us to wait before retrying (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl PortError {
    /// A transient error of `kind` (a [`PortErrorKind`], or a code string it parses).
    pub fn transient(kind: impl Into<PortErrorKind>, message: impl Into<String>) -> Self {
        PortError {
            kind: kind.into(),
            message: message.into(),
            transient: true,
            retry_after: None,
        }
    }

    /// A permanent error of `kind` (a [`PortErrorKind`], or a code string it parses).
    pub fn permanent(kind: impl Into<PortErrorKind>, message: impl Into<String>) -> Self {
        PortError {
            kind: kind.into(),
            message: message.into(),
            transient: false,
            retry_after: None,
        }
    }

    /// The error's code, as the journal and messages show it (`sql:1412`, `arm:409:…`).
    pub fn code(&self) -> String {
        self.kind.to_string()
    }

    /// The same error with a `Retry-After` hint.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// The remote side turned the request away because it is busy, before acting on it: ARM 409
    /// `ConflictingServerOperation` or `ManagedInstanceIsBusy` (another operation on the instance
    /// or the link is still running, which can take minutes) and any 429 (throttling). The
    /// expected answer is to wait (honouring `Retry-After`) and send the same request again, so
    /// the driver retries these for longer than other transient errors
    /// ([`crate::retry::RetryPolicy::busy_timeout`]).
    pub fn is_busy(&self) -> bool {
        self.is_throttled()
            || matches!(
                &self.kind,
                PortErrorKind::Arm { status: 409, code }
                    if code == "ConflictingServerOperation" || code == "ManagedInstanceIsBusy"
            )
    }

    /// The remote side throttled the request (ARM or HTTP 429): it was refused before it was
    /// acted on, so even a call that must not run twice may be sent again.
    pub fn is_throttled(&self) -> bool {
        self.kind.http_status() == Some(429)
    }
}

impl From<&str> for PortErrorKind {
    fn from(code: &str) -> Self {
        PortErrorKind::parse(code)
    }
}

impl From<String> for PortErrorKind {
    fn from(code: String) -> Self {
        PortErrorKind::parse(&code)
    }
}

impl From<&String> for PortErrorKind {
    fn from(code: &String) -> Self {
        PortErrorKind::parse(code)
    }
}

/// What a SQL Server operation returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceReply {
    /// Done; nothing to return.
    Done,
    /// A certificate's public key (DER).
    PublicKey(Vec<u8>),
}

/// The SQL Server side.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait SourceServer: Send + Sync {
    /// Runs one idempotent T-SQL operation.
    async fn execute(&self, op: &SourceOp) -> Result<SourceReply, PortError>;

    /// Reads SQL Server's view of the link: DAG role and both replicas' modes, connection, and
    /// the per-database replica states of `databases` and of every other database in the
    /// link's availability group (one round trip for all databases), so that the catch-up gate
    /// also sees a database added to the group later.
    async fn link_state(
        &self,
        link: &LinkName,
        databases: &[DatabaseName],
    ) -> Result<SideView, PortError>;

    /// Client sessions and open transactions on `databases` (one round trip, see
    /// [`crate::tsql::probe_workload_activity`]), to check the workload has stopped before a
    /// failover. Adapters that cannot read it keep this default, which answers
    /// [`UNSUPPORTED`].
    async fn workload_activity(
        &self,
        databases: &[DatabaseName],
    ) -> Result<WorkloadActivity, PortError> {
        let _ = databases;
        Err(workload_unsupported("SQL Server"))
    }

    /// Begins an Arc operation on this SQL Server (the Arc route,
    /// [`crate::lifecycle::LinkRoute::Arc`]): `Accepted` with the operation to poll, or
    /// `Completed`. Adapters that reach SQL Server over T-SQL keep this default, which answers
    /// [`UNSUPPORTED`].
    async fn arc_begin(&self, op: &crate::arc::ArcOp) -> Result<ArmReply, PortError> {
        Err(arc_unsupported(op))
    }

    /// Polls an accepted Arc operation `op` (never sends it again). A failed operation is an
    /// `Err`. The default answers [`UNSUPPORTED`].
    async fn arc_poll(
        &self,
        op: &crate::arc::ArcOp,
        operation: &OperationRef,
    ) -> Result<PollReply, PortError> {
        let _ = operation;
        Err(arc_unsupported(op))
    }

    /// What the session status must say about how this port reaches SQL Server, e.g. that the
    /// server's TLS certificate is not verified because the user asked for
    /// `TrustServerCertificate`. Empty (the default) when there is nothing to say.
    fn connection_warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// What beginning an ARM operation returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArmReply {
    /// Completed synchronously (200/201/204).
    Completed,
    /// A certificate's public key (for `GetEndpointCertificate`).
    PublicKey(Vec<u8>),
    /// Accepted (202): poll this operation.
    Accepted(OperationRef),
}

/// The state of a polled long-running operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollReply {
    /// Still running; poll again after the hint (or the machine's interval).
    Running {
        /// `Retry-After`, if sent.
        retry_after: Option<Duration>,
    },
    /// Finished successfully.
    Succeeded,
}

/// The managed instance side, through Azure Resource Manager (and, where only T-SQL can tell,
/// a connection to the instance).
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait ManagedInstance: Send + Sync {
    /// Begins an ARM operation.
    async fn begin(&self, op: &InstanceOp) -> Result<ArmReply, PortError>;

    /// Polls a long-running operation. A failed operation is an `Err` with the ARM error code.
    async fn poll(&self, operation: &OperationRef) -> Result<PollReply, PortError>;

    /// Reads the instance's view of the link (the link resource's `databases[]`, roles, mode).
    /// A missing link is `SideView { exists: false, .. }`, not an error.
    async fn link_state(&self, link: &LinkName) -> Result<SideView, PortError>;

    /// The instance's view of the link read live, from its own DMVs only (one T-SQL round trip
    /// on its endpoint, no ARM read), what the catch-up gate asks for between whole readings
    /// ([`crate::lifecycle::Probe::LinkLive`]). What only ARM knows (existence, failover mode,
    /// replica state, link error, update policy) is taken from this port's last whole reading
    /// of `link`. A port that cannot read the DMVs, or has no whole reading of `link` yet,
    /// answers with a whole reading: this default.
    async fn link_state_live(&self, link: &LinkName) -> Result<SideView, PortError> {
        self.link_state(link).await
    }

    /// The latest full backup of each database on the instance (`msdb.dbo.backupset`).
    async fn full_backups(&self, databases: &[DatabaseName]) -> Result<Vec<FullBackup>, PortError>;

    /// Client sessions and open transactions on `databases`, read over T-SQL on the instance
    /// (the check before failing back). Adapters that cannot read it keep this default, which
    /// answers [`UNSUPPORTED`].
    async fn workload_activity(
        &self,
        databases: &[DatabaseName],
    ) -> Result<WorkloadActivity, PortError> {
        let _ = databases;
        Err(workload_unsupported("managed instance"))
    }

    /// The instance's VNet-local FQDN as the service reports it now (ARM's
    /// `fullyQualifiedDomainName`): what a redirect to the instance checks the spec against, so
    /// a spec changed in a journal cannot send the workload's credentials to another host.
    /// `None`: this port cannot tell (the check is skipped); the default.
    async fn instance_fqdn(&self) -> Result<Option<MiFqdn>, PortError> {
        Ok(None)
    }
}

/// Where a link's accepted inputs are kept, in order, before their effects run.
///
/// Implementations must make a record durable before `append` returns and must refuse a record
/// whose `seq` is not the next one. The calls are synchronous: a record is small and the driver
/// appends one at a time.
pub trait Journal: Send {
    /// Appends one record durably.
    fn append(&mut self, record: &JournalRecord) -> Result<(), JournalError>;

    /// Every record, in order.
    fn records(&self) -> Result<Vec<JournalRecord>, JournalError>;

    /// Writes a checkpoint record (`JournalEntry::Checkpoint`, the next seq) durably, and may
    /// drop every record between the `Created` record and it: replay starts from the last
    /// checkpoint. The default appends it (resume time is bounded, size is not);
    /// [`crate::journal::FileJournal`] compacts its file to the `Created` record and the
    /// checkpoint, crash-safely.
    fn checkpoint(&mut self, record: &JournalRecord) -> Result<(), JournalError> {
        self.append(record)
    }

    /// The file behind the journal, if any (shown in session status).
    fn location(&self) -> Option<PathBuf> {
        None
    }
}

/// Convenience: find a database in a side's view.
pub fn find_database<'a>(view: &'a SideView, name: &DatabaseName) -> Option<&'a DatabaseView> {
    view.databases.iter().find(|d| &d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Minimal;

    #[async_trait]
    impl SourceServer for Minimal {
        async fn execute(&self, _op: &SourceOp) -> Result<SourceReply, PortError> {
            Ok(SourceReply::Done)
        }
        async fn link_state(
            &self,
            _link: &LinkName,
            _databases: &[DatabaseName],
        ) -> Result<SideView, PortError> {
            Err(PortError::permanent("io", "not used"))
        }
    }

    #[async_trait]
    impl ManagedInstance for Minimal {
        async fn begin(&self, _op: &InstanceOp) -> Result<ArmReply, PortError> {
            Ok(ArmReply::Completed)
        }
        async fn poll(&self, _operation: &OperationRef) -> Result<PollReply, PortError> {
            Ok(PollReply::Succeeded)
        }
        async fn link_state(&self, _link: &LinkName) -> Result<SideView, PortError> {
            Err(PortError::permanent("io", "not used"))
        }
        async fn full_backups(
            &self,
            _databases: &[DatabaseName],
        ) -> Result<Vec<FullBackup>, PortError> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn only_429_answers_are_throttled() {
        for code in ["arm:429:SubscriptionTooManyRequests", "http:429"] {
            assert!(PortError::transient(code, "m").is_throttled(), "{code}");
        }
        for code in [
            "arm:409:ConflictingServerOperation",
            "arm:4290:Other",
            "arm:503:TooManyRequests",
            "sql:429",
            "timeout",
        ] {
            assert!(!PortError::transient(code, "m").is_throttled(), "{code}");
        }
    }

    #[test]
    fn error_kinds_read_and_write_the_journal_codes() {
        let cases = [
            ("sql:1412", PortErrorKind::Sql(1412)),
            (
                "arm:409:ManagedInstanceIsBusy",
                PortErrorKind::Arm {
                    status: 409,
                    code: "ManagedInstanceIsBusy".to_owned(),
                },
            ),
            (
                "arm:409:Code:with:colons",
                PortErrorKind::Arm {
                    status: 409,
                    code: "Code:with:colons".to_owned(),
                },
            ),
            ("http:503", PortErrorKind::Http(503)),
            ("io", PortErrorKind::Io),
            ("timeout", PortErrorKind::Timeout),
            ("hook", PortErrorKind::Hook),
            ("unsupported", PortErrorKind::Unsupported),
            (
                "link:LinkCreationError",
                PortErrorKind::Other("link:LinkCreationError".to_owned()),
            ),
            ("sql:abc", PortErrorKind::Other("sql:abc".to_owned())),
        ];
        for (code, kind) in cases {
            assert_eq!(PortErrorKind::parse(code), kind, "{code}");
            assert_eq!(kind.to_string(), code);
            let e = PortError::transient(code, "m");
            assert_eq!(e.code(), code);
            assert_eq!(e.to_string(), format!("{code}: m"));
        }
        assert!(PortError::transient(PortErrorKind::Http(429), "m").is_throttled());
        assert!(PortError::transient("arm:409:ConflictingServerOperation", "m").is_busy());
        assert!(!PortError::transient("arm:409:SomethingElse", "m").is_busy());
    }

    #[tokio::test]
    async fn workload_activity_is_unsupported_unless_an_adapter_implements_it() {
        let dbs = [DatabaseName::new("ToyStore").unwrap()];
        let source = SourceServer::workload_activity(&Minimal, &dbs)
            .await
            .unwrap_err();
        let instance = ManagedInstance::workload_activity(&Minimal, &dbs)
            .await
            .unwrap_err();
        for err in [source, instance] {
            assert_eq!(err.code(), UNSUPPORTED);
            assert!(!err.transient);
        }
    }
}
