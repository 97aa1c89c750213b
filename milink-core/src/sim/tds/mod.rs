//! A loopback TDS server, so a real SQL Server client (tiberius) talks to the simulator over the
//! same wire protocol it uses against SQL Server.
//!
//! [`TdsServer::start`] binds `127.0.0.1:0`, generates a self-signed certificate for `localhost`
//! and `127.0.0.1` (clients trust it explicitly through [`TdsServer::certificate_der`]) and serves
//! each connection on its own task:
//! - PRELOGIN, answering the client's encryption request: TDS 7.4 with the TLS handshake carried
//!   inside PRELOGIN packets and TLS for everything after it (or for the login only, when the
//!   client asked for `Off`), or TDS 8 strict, where TLS comes first;
//! - LOGIN7 (user name, the de-obfuscated password, the database, the FEDAUTH access token), which
//!   the [`TdsHandler`] accepts or refuses;
//! - SQL batches and `sp_executesql` RPC requests with typed parameters, answered with the
//!   handler's [`Outcome`]s: result sets, row counts and errors.
//!
//! The protocol layer knows nothing about SQL: the handler decides every answer. A malformed or
//! truncated message closes only its connection, with a warning in the log.

mod login;
mod packet;
mod prelogin;
mod request;
mod server;
mod tokens;
mod types;

#[cfg(test)]
mod tests;

use async_trait::async_trait;

pub use login::Login;
pub use server::{TdsServer, TdsServerConfig};
pub use types::{SqlType, Value};

/// What a session knows about its connection, given to the handler with every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The server process id given to this connection (unique per server).
    pub spid: u16,
    /// The login's user name.
    pub user: String,
    /// The current database (the login's database, or `master`).
    pub database: String,
    /// Whether the connection uses TDS 8 strict encryption (TLS before the prelogin).
    pub strict: bool,
}

/// A typed parameter of an `sp_executesql` request (`@P1`, `@P2`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// The parameter's name as sent, e.g. `@P1`.
    pub name: String,
    /// Its value; NULL parameters arrive as [`Value::Null`].
    pub value: Value,
}

/// A column of a result set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The column's name.
    pub name: String,
    /// Its SQL type; every column is nullable.
    pub ty: SqlType,
}

impl Column {
    /// A column named `name` of type `ty`.
    pub fn new(name: impl Into<String>, ty: SqlType) -> Self {
        Column {
            name: name.into(),
            ty,
        }
    }
}

/// A result set: its columns and rows. Each row has one [`Value`] per column.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultSet {
    /// The columns, in order.
    pub columns: Vec<Column>,
    /// The rows, each with one value per column.
    pub rows: Vec<Vec<Value>>,
}

/// A SQL Server error message, as an ERROR token carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// The error number, e.g. 41962.
    pub number: u32,
    /// The state.
    pub state: u8,
    /// The class (severity); 11–16 are user errors, 20 and above end the connection on a real
    /// server (here the connection stays open unless the handler also answers [`Outcome::Close`]).
    pub class: u8,
    /// The message text.
    pub message: String,
    /// The server name; empty means the server's configured name.
    pub server: String,
    /// The procedure name, empty for a batch.
    pub procedure: String,
    /// The line number in the batch or procedure.
    pub line: u32,
}

impl SqlError {
    /// An error with state 1, line 1, no procedure and the server's own name.
    pub fn new(number: u32, class: u8, message: impl Into<String>) -> Self {
        SqlError {
            number,
            state: 1,
            class,
            message: message.into(),
            server: String::new(),
            procedure: String::new(),
            line: 1,
        }
    }

    /// SQL Server's answer to a refused login: error 18456, class 14, state 1.
    pub fn login_failed(user: &str) -> Self {
        SqlError::new(18456, 14, format!("Login failed for user '{user}'."))
    }
}

/// One part of the answer to a request, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A result set, followed by its row count.
    Rows(ResultSet),
    /// The row count of a statement without rows (INSERT, UPDATE, DDL: 0).
    Count(u64),
    /// An error message; the request goes on with the next outcome, as a batch does after a
    /// statement-level error.
    Error(SqlError),
    /// Close the connection (a crash, a killed session, a failover): the outcomes before it are
    /// sent without a final DONE, later ones are ignored. A client may take an answer cut after a
    /// complete statement for a whole one (tiberius 0.13 does); put `Close` first to make the
    /// request itself fail.
    Close,
}

/// The simulated server behind the protocol: it decides logins and answers requests.
///
/// The server calls it from many connection tasks at once. Answers are values; the handler never
/// sees the wire.
#[async_trait]
pub trait TdsHandler: Send + Sync + 'static {
    /// Accepts or refuses a login. To refuse, return the error to send, usually
    /// [`SqlError::login_failed`]; the connection is then closed.
    async fn login(&self, login: &Login) -> Result<(), SqlError>;

    /// Answers a SQL batch (`params` empty) or an `sp_executesql` call (its SQL text and typed
    /// parameters). An empty answer is a bare DONE.
    async fn batch(&self, session: &SessionInfo, sql: &str, params: &[Param]) -> Vec<Outcome>;
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum TdsError {
    /// Binding or reading the local address failed.
    #[error("tds server: io: {0}")]
    Io(#[from] std::io::Error),
    /// Generating the certificate or building the TLS configuration failed.
    #[error("tds server: tls setup: {0}")]
    Tls(String),
}
