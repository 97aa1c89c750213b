//! The statements the DDL parser reads, typed. Names are kept as written (unescaped); the
//! executor validates them when it applies a statement to the world.

use crate::lifecycle::AvailabilityMode;
use crate::secret::Secret;
use crate::time::Date;

use super::super::super::tds::Value;

/// A parsed batch: its statements in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// The statements.
    pub statements: Vec<Statement>,
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `USE db`.
    Use(String),
    /// `SET NOCOUNT ON|OFF` (and the other session `SET` options the simulator ignores).
    SetOption {
        /// The option, upper case.
        option: String,
        /// `ON`.
        on: bool,
    },
    /// A read-only statement (`SELECT …`, `WITH … SELECT …`), evaluated by the query engine.
    Query(Query),
    /// `IF <condition> <statement> [ELSE <statement>]`.
    If {
        /// The condition.
        condition: Condition,
        /// Run when it holds.
        then: Box<Statement>,
        /// Run when it does not.
        otherwise: Option<Box<Statement>>,
    },
    /// `BEGIN … END`.
    Block(Vec<Statement>),
    /// `BEGIN TRY … END TRY BEGIN CATCH … END CATCH`.
    TryCatch {
        /// The statements tried.
        body: Vec<Statement>,
        /// Run with the error when one of them fails.
        handler: Vec<Statement>,
    },
    /// `DECLARE @v type [= expr], …`.
    Declare(Vec<(String, Option<Expr>)>),
    /// `EXEC[UTE] procedure args`.
    Exec {
        /// The procedure's last name part (`sp_certificate_add_issuer`).
        procedure: String,
        /// Its arguments, each with its `@name =` when named.
        args: Vec<(Option<String>, Expr)>,
    },
    /// `THROW` (re-raise, inside CATCH) or `THROW number, message, state`.
    Throw(Option<(Expr, Expr, Expr)>),
    /// A statement that changes the server.
    Ddl(Ddl),
}

/// A read-only statement: its text range in the batch and its tokens' range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Index of its first token.
    pub first: usize,
    /// Index just past its last token (the `;` excluded).
    pub last: usize,
    /// Whether it calls `CERTENCODED` (the public key read).
    pub reads_public_key: bool,
    /// Whether it reads an availability group view or HADR DMV (the link's state).
    pub reads_hadr: bool,
    /// Whether it reads `backupset` (the managed instance's first full backups).
    pub reads_backups: bool,
}

/// An `IF` condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `[NOT] EXISTS (<query>)`.
    Exists {
        /// `NOT EXISTS`.
        negated: bool,
        /// The subquery (between the parentheses).
        query: Query,
    },
    /// `<expr> [NOT] LIKE <expr>`.
    Like {
        /// The value.
        value: Expr,
        /// `NOT LIKE`.
        negated: bool,
        /// The pattern (`%` and `_` wildcards).
        pattern: Expr,
    },
    /// `<expr> = <expr>` (`negated`: `<>` / `!=`).
    Equals {
        /// Left.
        left: Expr,
        /// `<>`.
        negated: bool,
        /// Right.
        right: Expr,
    },
}

/// A scalar expression of the forms the DDL batches use.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Literal(Value),
    /// A variable.
    Var(String),
    /// `CERT_ID(expr)`.
    CertId(Box<Expr>),
    /// `ERROR_MESSAGE()`.
    ErrorMessage,
    /// `ERROR_NUMBER()`.
    ErrorNumber,
    /// Any other scalar (in `DECLARE @v type = <scalar>`): evaluated by the query engine as
    /// `SELECT <scalar>`.
    Query(Query),
}

/// `STATE =` of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointState {
    /// `STARTED`.
    Started,
    /// `STOPPED`.
    Stopped,
    /// `DISABLED`.
    Disabled,
}

/// `ENCRYPTION =` of a mirroring endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointEncryption {
    /// `DISABLED`, `SUPPORTED` or `REQUIRED`, upper case.
    pub mode: String,
    /// The algorithms after `ALGORITHM`, upper case (`AES`, `RC4`).
    pub algorithms: Vec<String>,
}

/// `CREATE ENDPOINT` / `ALTER ENDPOINT`: every part is optional in `ALTER`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndpointBody {
    /// `STATE =`.
    pub state: Option<EndpointState>,
    /// `LISTENER_PORT =`.
    pub port: Option<u16>,
    /// `LISTENER_IP = ALL` (None) or `(address)`.
    pub listener_ip: Option<String>,
    /// `FOR DATABASE_MIRRORING (…)` given.
    pub mirroring: bool,
    /// `ROLE =`, upper case.
    pub role: Option<String>,
    /// `AUTHENTICATION =`: the Windows part, upper case (`WINDOWS NEGOTIATE`), if any.
    pub windows_auth: Option<String>,
    /// `AUTHENTICATION = … CERTIFICATE name`.
    pub certificate: Option<String>,
    /// `ENCRYPTION =`.
    pub encryption: Option<EndpointEncryption>,
}

/// One `REPLICA ON N'server' WITH (…)` of an availability group, or one `N'ag' WITH (…)` of a
/// distributed availability group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplicaOptions {
    /// The server (AG) or availability group (DAG) name.
    pub name: String,
    /// `ENDPOINT_URL =`.
    pub endpoint_url: Option<String>,
    /// `LISTENER_URL =`.
    pub listener_url: Option<String>,
    /// `AVAILABILITY_MODE =`.
    pub availability_mode: Option<AvailabilityMode>,
    /// `FAILOVER_MODE =`, upper case.
    pub failover_mode: Option<String>,
    /// `SEEDING_MODE =`, upper case.
    pub seeding_mode: Option<String>,
    /// `SESSION_TIMEOUT =`.
    pub session_timeout: Option<u16>,
    /// `SECONDARY_ROLE (ALLOW_CONNECTIONS = …)`, upper case.
    pub secondary_allow_connections: Option<String>,
}

/// The statements that change the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Ddl {
    /// `CREATE MASTER KEY ENCRYPTION BY PASSWORD = '…'`.
    CreateMasterKey {
        /// The password (never shown).
        password: Secret,
    },
    /// `CREATE CERTIFICATE name WITH SUBJECT = '…' [, EXPIRY_DATE = '…'] [, START_DATE = '…']`.
    CreateCertificate {
        /// Name.
        name: String,
        /// Subject.
        subject: String,
        /// Expiry date.
        expiry: Option<Date>,
    },
    /// `CREATE CERTIFICATE name FROM BINARY = 0x…`.
    CreateCertificateFromBinary {
        /// Name.
        name: String,
        /// The DER bytes.
        der: Vec<u8>,
    },
    /// `DROP CERTIFICATE name`.
    DropCertificate(String),
    /// `CREATE ENDPOINT name …`.
    CreateEndpoint {
        /// Name.
        name: String,
        /// The rest.
        body: EndpointBody,
    },
    /// `ALTER ENDPOINT name …`.
    AlterEndpoint {
        /// Name.
        name: String,
        /// What changes.
        body: EndpointBody,
    },
    /// `DROP ENDPOINT name`.
    DropEndpoint(String),
    /// `CREATE AVAILABILITY GROUP name [WITH (CLUSTER_TYPE = …)] FOR [DATABASE …] REPLICA ON …`.
    CreateAvailabilityGroup {
        /// Name.
        name: String,
        /// `CLUSTER_TYPE =`, upper case.
        cluster_type: Option<String>,
        /// The databases.
        databases: Vec<String>,
        /// The replicas.
        replicas: Vec<ReplicaOptions>,
    },
    /// `CREATE AVAILABILITY GROUP name WITH (DISTRIBUTED) AVAILABILITY GROUP ON …`.
    CreateDistributedAvailabilityGroup {
        /// Name.
        name: String,
        /// The two availability groups.
        groups: Vec<ReplicaOptions>,
    },
    /// `ALTER AVAILABILITY GROUP name GRANT CREATE ANY DATABASE`.
    GrantCreateAnyDatabase(String),
    /// `ALTER AVAILABILITY GROUP name MODIFY AVAILABILITY GROUP ON …`.
    ModifyDistributed {
        /// Name.
        name: String,
        /// The availability groups changed.
        groups: Vec<ReplicaOptions>,
    },
    /// `ALTER AVAILABILITY GROUP name FAILOVER`.
    Failover(String),
    /// `ALTER AVAILABILITY GROUP name FORCE_FAILOVER_ALLOW_DATA_LOSS`.
    ForceFailover(String),
    /// `ALTER AVAILABILITY GROUP name SET (ROLE = SECONDARY)`.
    SetRoleSecondary(String),
    /// `DROP AVAILABILITY GROUP name`.
    DropAvailabilityGroup(String),
}
