//! SQL Server error numbers as milink reads them: what each means for the link, the documented
//! fix, and whether sending the same batch again may succeed.
//!
//! Everything the adapter knows about an error number lives here, in one table
//! ([`KNOWN_ERRORS`]), so the machine sees the same `sql:<number>` codes and transient flags
//! from a real server as from the simulator ([`SqlError::to_port_error`]).
//!
//! "Already exists" answers are listed apart ([`ALREADY_EXISTS`]): whether such an answer means
//! the step reached its goal depends on the step, which [`AlreadyExistsPolicy`] decides per
//! [`SourceOp`]. Numbers marked `verified: false` are not in milink-facts nor in Microsoft's list
//! of database engine errors as stored; they are kept out of the default policy.

use std::fmt;

use crate::lifecycle::SourceOp;
use crate::ports::{PortError, PortErrorKind};

/// What milink knows about one SQL Server error number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownError {
    /// The error number.
    pub number: u32,
    /// A short cause, in the link's terms.
    pub cause: &'static str,
    /// The documented fix.
    pub fix: &'static str,
    /// Whether re-sending the same batch may succeed without anyone fixing anything.
    pub transient: bool,
}

const fn known(number: u32, transient: bool, cause: &'static str, fix: &'static str) -> KnownError {
    KnownError {
        number,
        cause,
        fix,
        transient,
    }
}

/// Every error number the adapter gives a cause and fix for. Sources: milink-facts §3.4 (the
/// link's own numbers), §3.3 (1408, 1412), §1.3 (1475), §1.4 (2812); the others are SQL Server's
/// catalogue numbers (Microsoft's list of database engine errors) for the message named.
pub const KNOWN_ERRORS: &[KnownError] = &[
    // The link's initialisation (`LinkInitError`), milink-facts §3.4.
    known(
        41962,
        true,
        "the link was not initiated within 5 minutes: the managed instance could not reach SQL \
         Server's mirroring endpoint",
        "open TCP 5022 between SQL Server and the managed instance subnet and 11000-11999 from \
         SQL Server to it (NSG, host and corporate firewalls), check that the partner endpoint \
         resolves from the instance, then retry",
    ),
    known(
        41973,
        false,
        "SQL Server's endpoint certificate was not imported into the managed instance correctly",
        "upload the public key of SQL Server's endpoint certificate as a server trust \
         certificate of the managed instance, then retry",
    ),
    known(
        41974,
        false,
        "the managed instance's endpoint certificate was not imported into SQL Server correctly",
        "import the instance's DATABASE_MIRRORING endpoint certificate into master, named \
         exactly after the instance's FQDN, then retry",
    ),
    known(
        41976,
        false,
        "the availability group is not responding: the AG or DAG names or parameters do not match",
        "check that the link's partner AG name, the instance AG name and the listener URLs are \
         the ones created on SQL Server",
    ),
    known(
        41986,
        true,
        "the connection between the replicas failed or the secondary is unresponsive",
        "check network connectivity on 5022 and 11000-11999 in both directions; the link \
         reconnects by itself once the path is open",
    ),
    known(
        47521,
        true,
        "the secondary did not receive the request",
        "check network connectivity between the replicas, then retry",
    ),
    // The link's creation (`LinkCreationError`), milink-facts §3.3 and §3.4.
    known(
        41977,
        false,
        "the target database did not respond while the link was created",
        "delete the link, check the managed instance's health and storage, then create it again",
    ),
    known(
        1408,
        false,
        "the remote copy of the database is not recovered far enough: a log backup on the \
         primary truncated the log during seeding",
        "delete and recreate the link; hold log backups (or turn on trace flag 12381 where \
         supported) until seeding completes",
    ),
    known(
        1412,
        false,
        "the remote copy of the database has not been rolled forward to a point the local log \
         encompasses: the log was truncated during seeding",
        "delete and recreate the link; hold log backups (or turn on trace flag 12381 where \
         supported) until seeding completes",
    ),
    // Preparation, milink-facts §1.3 and §1.4.
    known(
        1475,
        false,
        "the database needs a new backup chain",
        "take a full backup of the database without COPY_ONLY, then retry",
    ),
    known(
        2812,
        false,
        "a stored procedure does not exist: sp_certificate_add_issuer is missing on builds that \
         cannot carry the link",
        "update SQL Server to a build that supports the managed instance link (milink-facts \
         §1.1), then retry",
    ),
    known(
        19499,
        false,
        "the listener URL of the distributed availability group is invalid",
        "give the listener URL as TCP://<host>:<port> with the SQL Server endpoint's address and \
         port, and the instance's as tcp://<fqdn>:5022;Server=[<instance>]",
    ),
    known(
        35250,
        true,
        "the connection to the primary replica is not active",
        "check that the primary is up and the mirroring endpoints are started and reachable; \
         the command succeeds once the replicas are connected",
    ),
    known(
        7862,
        false,
        "a DATABASE_MIRRORING endpoint of another name already exists (only one is allowed)",
        "use the existing endpoint: name it in the link's spec, or ALTER ENDPOINT it to add \
         certificate authentication and AES",
    ),
    known(
        19509,
        false,
        "an availability group of the link's name already exists, and it is not distributed",
        "choose another link name or drop the availability group that holds it",
    ),
    // Roles and access.
    known(
        976,
        false,
        "the database is a secondary replica that is not accessible for queries",
        "connect to the primary replica; after a failover, point the workload at the new \
         primary",
    ),
    known(
        3906,
        false,
        "the database is read-only",
        "write on the primary replica; the link's secondary accepts no writes",
    ),
    known(
        15151,
        false,
        "the named object does not exist, or the login has no permission on it",
        "check the name and that milink's login is sysadmin on SQL Server",
    ),
    // Logins.
    known(
        18452,
        false,
        "login failed: the login is from an untrusted domain and cannot be used with Windows \
         authentication",
        "use a SQL login or Entra authentication, or a Windows login from a trusted domain",
    ),
    known(
        18456,
        false,
        "login failed for the user",
        "check the user name and password, that the login exists and is enabled, and that the \
         server allows its authentication mode",
    ),
    known(
        4060,
        false,
        "the database requested by the login cannot be opened",
        "connect to master, or check that the database exists and the login has access to it",
    ),
    // Transient by nature.
    known(
        1205,
        true,
        "the batch was chosen as a deadlock victim",
        "run the batch again",
    ),
    known(
        40613,
        true,
        "the database is not currently available (Azure SQL reconfiguration)",
        "retry after a short wait",
    ),
    known(
        40197,
        true,
        "the service hit an error processing the request (Azure SQL reconfiguration or failover)",
        "retry after a short wait",
    ),
];

/// What an "already exists" answer is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExistingObject {
    /// An object in a database's schema (2714).
    SchemaObject,
    /// A certificate of that name, or the same certificate under any name (15232).
    Certificate,
    /// The database master key (15578).
    MasterKey,
    /// A `DATABASE_MIRRORING` endpoint, of whatever name (7862).
    MirroringEndpoint,
    /// An (ordinary) availability group of that name.
    AvailabilityGroup,
    /// A name a distributed availability group wants, taken by an availability group (19509).
    DistributedAvailabilityGroup,
}

/// One "already exists" answer of SQL Server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlreadyExists {
    /// The error number.
    pub number: u32,
    /// What exists.
    pub object: ExistingObject,
    /// Whether the answer proves the object milink wanted is there (not merely something that
    /// takes its place).
    pub proves_goal: bool,
    /// Whether the number was checked against a source ([`AlreadyExists::source`]).
    pub verified: bool,
    /// Where the number comes from.
    pub source: &'static str,
}

/// The "already exists" answers milink knows.
///
/// The number for an ordinary availability group of the same name is not in milink-facts nor in
/// the stored copy of Microsoft's list (UNVERIFIED): it is left out, and
/// [`AlreadyExistsPolicy::accept`] adds it once known. The builders guard every `CREATE` with
/// `IF NOT EXISTS`, so these answers come only from a race or from an object that takes the
/// name or place of milink's.
pub const ALREADY_EXISTS: &[AlreadyExists] = &[
    AlreadyExists {
        number: 2714,
        object: ExistingObject::SchemaObject,
        proves_goal: false,
        verified: true,
        source: "\"There is already an object named … in the database\", Microsoft's list of \
                 database engine errors",
    },
    AlreadyExists {
        number: 15232,
        object: ExistingObject::Certificate,
        proves_goal: true,
        verified: true,
        source: "\"A certificate with name … already exists or this certificate already has been \
                 added to the database\", Microsoft's list of database engine errors; milink-facts \
                 §1.4 e (a re-run of the root CA import: idempotent success)",
    },
    AlreadyExists {
        number: 15578,
        object: ExistingObject::MasterKey,
        proves_goal: true,
        verified: true,
        source: "\"There is already a master key in the database\", Microsoft's list of database \
                 engine errors",
    },
    AlreadyExists {
        number: 7862,
        object: ExistingObject::MirroringEndpoint,
        proves_goal: false,
        verified: true,
        source: "\"An endpoint of the requested type already exists. Only one endpoint of this \
                 type is supported\", Microsoft's list of database engine errors",
    },
    AlreadyExists {
        number: 19509,
        object: ExistingObject::DistributedAvailabilityGroup,
        proves_goal: false,
        verified: true,
        source: "\"Cannot create a distributed availability group … An availability group with \
                 the same name already exists\", Microsoft's list of database engine errors",
    },
];

/// Which "already exists" answers count as success for which [`SourceOp`].
///
/// An answer counts only for an op that ensures an object of its kind, and only when the
/// answer proves the object is the one wanted. By default:
/// - [`SourceOp::EnsureMasterKey`]: 15578 (a master key exists: that is the goal);
/// - [`SourceOp::EnsureEndpointCertificate`] and [`SourceOp::EnsureRootCaTrust`]: 15232
///   (milink-facts §1.4 e);
/// - nothing else. Not [`SourceOp::ImportInstanceCertificate`]: its batch is guarded by name, so
///   15232 there means the instance's certificate is in `master` under another name, and the
///   link needs it under the instance's FQDN. Not [`SourceOp::EnsureMirroringEndpoint`] (7862:
///   another endpoint exists, whose authentication milink has not checked), nor
///   [`SourceOp::CreateDistributedAvailabilityGroup`] (19509: an ordinary AG holds the name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlreadyExistsPolicy {
    answers: Vec<AlreadyExists>,
}

impl Default for AlreadyExistsPolicy {
    fn default() -> Self {
        AlreadyExistsPolicy {
            answers: ALREADY_EXISTS.to_vec(),
        }
    }
}

impl AlreadyExistsPolicy {
    /// Also accept `number` as proof that `object` exists (e.g. the availability group's number
    /// once checked against a server), counted unverified.
    pub fn accept(mut self, number: u32, object: ExistingObject) -> Self {
        self.answers.retain(|a| a.number != number);
        self.answers.push(AlreadyExists {
            number,
            object,
            proves_goal: true,
            verified: false,
            source: "configured",
        });
        self
    }

    /// The "already exists" answer of `number`, if it is one.
    pub fn answer(&self, number: u32) -> Option<&AlreadyExists> {
        self.answers.iter().find(|a| a.number == number)
    }

    /// Whether error `number` from `op`'s batch means the op reached its goal.
    pub fn counts_as_success(&self, op: &SourceOp, number: u32) -> bool {
        match (ensured_object(op), self.answer(number)) {
            (Some(wanted), Some(answer)) => answer.object == wanted && answer.proves_goal,
            _ => false,
        }
    }
}

/// The object `op` ensures when an "already exists" answer about it means the goal holds; `None`
/// for ops that are not idempotent creations (role changes, drops, mode changes, reads) or whose
/// answer could be about another object ([`SourceOp::ImportInstanceCertificate`]).
pub fn ensured_object(op: &SourceOp) -> Option<ExistingObject> {
    match op {
        SourceOp::EnsureMasterKey => Some(ExistingObject::MasterKey),
        SourceOp::EnsureEndpointCertificate { .. } | SourceOp::EnsureRootCaTrust => {
            Some(ExistingObject::Certificate)
        }
        SourceOp::EnsureMirroringEndpoint { .. } => Some(ExistingObject::MirroringEndpoint),
        SourceOp::CreateAvailabilityGroup { .. } => Some(ExistingObject::AvailabilityGroup),
        SourceOp::CreateDistributedAvailabilityGroup { .. } => {
            Some(ExistingObject::DistributedAvailabilityGroup)
        }
        SourceOp::ImportInstanceCertificate { .. }
        | SourceOp::ExportCertificatePublicKey { .. }
        | SourceOp::GrantCreateAnyDatabase { .. }
        | SourceOp::SetAvailabilityMode { .. }
        | SourceOp::Failover { .. }
        | SourceOp::ForceFailover { .. }
        | SourceOp::SetRoleSecondary { .. }
        | SourceOp::DropDistributedAvailabilityGroup { .. }
        | SourceOp::DropAvailabilityGroup { .. } => None,
    }
}

/// Looks a number up in [`KNOWN_ERRORS`].
pub fn known_error(number: u32) -> Option<&'static KnownError> {
    KNOWN_ERRORS.iter().find(|e| e.number == number)
}

/// An error SQL Server answered, typed: its number, what milink knows about it, and the
/// server's own message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// The error number.
    pub number: u32,
    /// A short cause (the server's message when the number is unknown).
    pub cause: String,
    /// The documented fix, when known.
    pub fix: Option<&'static str>,
    /// Whether re-sending the same batch may succeed.
    pub transient: bool,
    /// The server's message, as it sent it.
    pub server_message: String,
}

impl SqlError {
    /// Types error `number` with the server's `message`. Unknown numbers are permanent, their
    /// cause the server's message.
    pub fn new(number: u32, message: impl Into<String>) -> SqlError {
        let server_message = message.into();
        match known_error(number) {
            Some(k) => SqlError {
                number,
                cause: k.cause.to_owned(),
                fix: Some(k.fix),
                transient: k.transient,
                server_message,
            },
            None => SqlError {
                number,
                cause: server_message.clone(),
                fix: None,
                transient: false,
                server_message,
            },
        }
    }

    /// Whether the number is one milink gives a cause and fix for.
    pub fn is_known(&self) -> bool {
        self.fix.is_some()
    }

    /// The [`PortError`] the machine sees: kind `sql:<number>`, the transient flag, and a
    /// message with cause, fix and the server's text.
    pub fn to_port_error(&self) -> PortError {
        let error = PortError::permanent(PortErrorKind::Sql(self.number), self.to_string());
        PortError {
            transient: self.transient,
            ..error
        }
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.fix {
            Some(fix) => {
                write!(f, "{}; fix: {fix}", self.cause)?;
                if !self.server_message.is_empty() {
                    write!(f, " (SQL Server: {})", self.server_message)?;
                }
                Ok(())
            }
            None => write!(f, "SQL Server error {}: {}", self.number, self.cause),
        }
    }
}

impl std::error::Error for SqlError {}

impl From<SqlError> for PortError {
    fn from(error: SqlError) -> PortError {
        error.to_port_error()
    }
}

/// The port's answer to error `number` from `op`'s batch: `Ok(())` when it is an "already
/// exists" answer that proves the goal under `policy`, else the typed [`PortError`].
pub fn judge(
    policy: &AlreadyExistsPolicy,
    op: &SourceOp,
    number: u32,
    message: &str,
) -> Result<(), PortError> {
    if policy.counts_as_success(op, number) {
        Ok(())
    } else {
        Err(SqlError::new(number, message).to_port_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{AgName, CertificateName, DatabaseName, LinkName, MiFqdn, ServerName};
    use crate::tsql;

    const ENGINE_ERRORS: &str = "Microsoft's list of database engine errors";

    const REQUIRED: &[u32] = &[
        41962, 41973, 41974, 41976, 41977, 41986, 47521, 1408, 1412, 1475, 19499, 2812, 976, 3906,
        18452, 18456, 4060, 15151, 35250,
    ];
    const TRANSIENT: &[u32] = &[41962, 41986, 47521, 35250, 1205, 40613, 40197];

    fn link() -> LinkName {
        LinkName::new("tailspin-link").unwrap()
    }

    fn ag() -> AgName {
        AgName::new("AG_ToyStore").unwrap()
    }

    fn cert() -> CertificateName {
        CertificateName::new("Cert_TailspinSql_endpoint").unwrap()
    }

    fn all_ops() -> Vec<SourceOp> {
        vec![
            SourceOp::EnsureMasterKey,
            SourceOp::EnsureEndpointCertificate {
                name: cert(),
                subject: "s".to_owned(),
                expiry: crate::time::Date::new(2030, 1, 1).unwrap(),
            },
            SourceOp::EnsureMirroringEndpoint {
                spec: tsql::MirroringEndpointSpec {
                    name: crate::names::EndpointName::new("database_mirroring_endpoint").unwrap(),
                    port: crate::names::TcpPort::new(5022).unwrap(),
                    certificate: cert(),
                    auth: tsql::EndpointAuth::Certificate,
                    encryption: tsql::EndpointEncryption::Aes,
                },
            },
            SourceOp::ExportCertificatePublicKey { name: cert() },
            SourceOp::ImportInstanceCertificate {
                fqdn: MiFqdn::new("tailspin-mi.abc123.database.windows.net").unwrap(),
                der: vec![0x30],
            },
            SourceOp::EnsureRootCaTrust,
            SourceOp::CreateAvailabilityGroup {
                spec: tsql::CreateAgSpec {
                    ag: ag(),
                    databases: vec![DatabaseName::new("ToyStore").unwrap()],
                    replica: ServerName::new("TailspinSql").unwrap(),
                    endpoint_url: "TCP://10.0.0.4:5022".to_owned(),
                    cluster_type_none: true,
                },
            },
            SourceOp::GrantCreateAnyDatabase { ag: ag() },
            SourceOp::CreateDistributedAvailabilityGroup {
                spec: tsql::CreateDagSpec {
                    dag: link(),
                    sql_ag: ag(),
                    sql_listener_url: "TCP://10.0.0.4:5022".to_owned(),
                    mi_ag: AgName::new("AG_ToyStore_MI").unwrap(),
                    mi_fqdn: MiFqdn::new("tailspin-mi.abc123.database.windows.net").unwrap(),
                    mi_database: None,
                    session_timeout_s: 20,
                },
            },
            SourceOp::SetAvailabilityMode {
                dag: link(),
                sql_ag: ag(),
                mi_ag: AgName::new("AG_ToyStore_MI").unwrap(),
                mode: tsql::AvailabilityMode::SynchronousCommit,
            },
            SourceOp::Failover { dag: link() },
            SourceOp::ForceFailover { dag: link() },
            SourceOp::SetRoleSecondary { dag: link() },
            SourceOp::DropDistributedAvailabilityGroup { dag: link() },
            SourceOp::DropAvailabilityGroup { ag: ag() },
        ]
    }

    #[test]
    fn every_required_number_has_a_cause_and_a_fix() {
        for &number in REQUIRED.iter().chain(TRANSIENT) {
            let k = known_error(number).unwrap_or_else(|| panic!("{number} is not mapped"));
            assert!(!k.cause.is_empty() && !k.fix.is_empty(), "{number}");
            let e = SqlError::new(number, "server text");
            assert!(e.is_known());
            assert_eq!(e.transient, TRANSIENT.contains(&number), "{number}");
        }
    }

    #[test]
    fn the_table_has_no_duplicates() {
        let mut numbers: Vec<u32> = KNOWN_ERRORS.iter().map(|k| k.number).collect();
        numbers.sort_unstable();
        let before = numbers.len();
        numbers.dedup();
        assert_eq!(numbers.len(), before);
        let mut exists: Vec<u32> = ALREADY_EXISTS.iter().map(|a| a.number).collect();
        exists.sort_unstable();
        let before = exists.len();
        exists.dedup();
        assert_eq!(exists.len(), before);
    }

    #[test]
    fn each_number_maps_to_its_port_error() {
        for &number in REQUIRED.iter().chain(TRANSIENT) {
            let e = SqlError::new(number, "Msg text from the server").to_port_error();
            assert_eq!(e.kind, PortErrorKind::Sql(number));
            assert_eq!(e.code(), format!("sql:{number}"));
            assert_eq!(e.transient, TRANSIENT.contains(&number), "{number}");
            assert!(e.message.contains("fix: "), "{}", e.message);
            assert!(e.message.contains("Msg text from the server"));
            assert_eq!(e.retry_after, None);
        }
    }

    #[test]
    fn the_link_numbers_agree_with_the_simulator() {
        // The simulator answers 41962 as transient and the other link numbers as permanent.
        assert!(SqlError::new(41962, "").transient);
        for number in [
            41973, 41974, 41976, 41977, 1408, 1412, 1475, 2812, 7862, 976, 3906,
        ] {
            assert!(!SqlError::new(number, "").transient, "{number}");
        }
    }

    #[test]
    fn specific_causes() {
        let cases: &[(u32, &str)] = &[
            (41962, "not initiated within 5 minutes"),
            (41973, "SQL Server's endpoint certificate"),
            (41974, "managed instance's endpoint certificate"),
            (41976, "not responding"),
            (41977, "target database did not respond"),
            (41986, "connection between the replicas failed"),
            (47521, "did not receive the request"),
            (1408, "log backup"),
            (1412, "rolled forward"),
            (1475, "backup chain"),
            (19499, "listener URL"),
            (2812, "sp_certificate_add_issuer"),
            (976, "not accessible"),
            (3906, "read-only"),
            (18452, "untrusted domain"),
            (18456, "login failed"),
            (4060, "cannot be opened"),
            (15151, "does not exist"),
            (35250, "primary replica is not active"),
            (1205, "deadlock"),
            (40613, "not currently available"),
            (40197, "error processing the request"),
        ];
        for (number, words) in cases {
            let e = SqlError::new(*number, "");
            assert!(e.cause.contains(words), "{number}: {}", e.cause);
        }
        let fix = SqlError::new(1475, "").fix.unwrap();
        assert!(fix.contains("without COPY_ONLY"));
        assert!(
            SqlError::new(41974, "")
                .fix
                .unwrap()
                .contains("named exactly after the instance's FQDN")
        );
    }

    #[test]
    fn unknown_numbers_are_permanent_and_keep_the_servers_message() {
        let e = SqlError::new(50000, "a custom RAISERROR");
        assert!(!e.is_known());
        assert!(!e.transient);
        let port = PortError::from(e);
        assert_eq!(port.code(), "sql:50000");
        assert!(!port.transient);
        assert_eq!(port.message, "SQL Server error 50000: a custom RAISERROR");
    }

    #[test]
    fn already_exists_numbers_and_their_sources() {
        let policy = AlreadyExistsPolicy::default();
        for (number, object) in [
            (2714, ExistingObject::SchemaObject),
            (15232, ExistingObject::Certificate),
            (15578, ExistingObject::MasterKey),
            (7862, ExistingObject::MirroringEndpoint),
            (19509, ExistingObject::DistributedAvailabilityGroup),
        ] {
            let a = policy.answer(number).unwrap();
            assert_eq!(a.object, object);
            assert!(a.verified, "{number}");
            assert!(a.source.contains(ENGINE_ERRORS), "{number}: {}", a.source);
        }
        assert!(
            ALREADY_EXISTS
                .iter()
                .all(|a| a.object != ExistingObject::AvailabilityGroup),
            "the AG's number is unverified and stays out of the default"
        );
    }

    #[test]
    fn already_exists_counts_only_where_the_step_is_idempotent() {
        let policy = AlreadyExistsPolicy::default();
        for op in all_ops() {
            let accepted: Vec<u32> = ALREADY_EXISTS
                .iter()
                .map(|a| a.number)
                .filter(|n| policy.counts_as_success(&op, *n))
                .collect();
            let expected: &[u32] = match op {
                SourceOp::EnsureMasterKey => &[15578],
                SourceOp::EnsureEndpointCertificate { .. } | SourceOp::EnsureRootCaTrust => {
                    &[15232]
                }
                _ => &[],
            };
            assert_eq!(accepted, expected, "{op:?}");
            if op.is_role_change() {
                assert_eq!(ensured_object(&op), None);
            }
        }
    }

    #[test]
    fn judge_turns_an_accepted_answer_into_success_and_the_rest_into_port_errors() {
        let policy = AlreadyExistsPolicy::default();
        assert_eq!(
            judge(
                &policy,
                &SourceOp::EnsureMasterKey,
                15578,
                "There is already a master key"
            ),
            Ok(())
        );
        let e = judge(&policy, &SourceOp::EnsureMasterKey, 1205, "deadlock").unwrap_err();
        assert_eq!(e.code(), "sql:1205");
        assert!(e.transient);
        let import = SourceOp::ImportInstanceCertificate {
            fqdn: MiFqdn::new("tailspin-mi.abc123.database.windows.net").unwrap(),
            der: vec![0x30],
        };
        let e = judge(&policy, &import, 15232, "A certificate with name").unwrap_err();
        assert_eq!(e.code(), "sql:15232");
        assert!(!e.transient);
    }

    #[test]
    fn the_policy_takes_a_configured_number() {
        let create_ag = all_ops()
            .into_iter()
            .find(|op| matches!(op, SourceOp::CreateAvailabilityGroup { .. }))
            .unwrap();
        let policy = AlreadyExistsPolicy::default();
        assert!(!policy.counts_as_success(&create_ag, 99_999));
        let policy = policy.accept(99_999, ExistingObject::AvailabilityGroup);
        assert!(policy.counts_as_success(&create_ag, 99_999));
        assert!(!policy.answer(99_999).unwrap().verified);
        assert!(!policy.counts_as_success(&SourceOp::EnsureMasterKey, 99_999));
    }
}
