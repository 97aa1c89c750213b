//! What connecting and running statements fail with: [`ConnectError`], [`SqlError`], and their
//! [`PortError`] form. Messages name the problem and the fix; none contains a password or a
//! token (the options keep those in [`crate::Secret`], and no message is built from them).

use std::time::Duration;

use crate::ports::{PortError, PortErrorKind};
use crate::redirect::ConnectionStringError;

use super::options::CommandKind;

/// SQL Server error numbers after which reconnecting and trying again is expected to work:
/// a deadlock victim (1205), Azure SQL's "database unavailable" (40613), "service error"
/// (40197), "service busy" (40501), resource limits (10928, 10929) and the
/// "failover in progress" family (49918, 49919, 49920). The complete mapping of numbers lives
/// with the adapter's error module; this list only decides reconnections.
pub const TRANSIENT_SQL_ERRORS: &[u32] =
    &[1205, 10928, 10929, 40197, 40501, 40613, 49918, 49919, 49920];

/// Whether SQL Server error `number` is worth a reconnection and another attempt.
pub fn is_transient_number(number: u32) -> bool {
    TRANSIENT_SQL_ERRORS.contains(&number)
}

/// A token provider could not supply a Microsoft Entra token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TokenError {
    /// What went wrong, never the token.
    pub message: String,
    /// Whether asking again later may succeed (a network failure, a throttled endpoint).
    pub transient: bool,
}

impl TokenError {
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        TokenError {
            message: message.into(),
            transient: true,
        }
    }

    /// A failure that will not go away by itself (no identity, no permission).
    pub fn permanent(message: impl Into<String>) -> Self {
        TokenError {
            message: message.into(),
            transient: false,
        }
    }
}

/// Why a connection could not be set up: the options, the network, TLS or the login.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The connection string does not parse.
    #[error("the connection string is malformed: {0}; fix it with SqlClient's key=value; syntax")]
    ConnectionString(#[from] ConnectionStringError),
    /// The connection string is longer than anyone writes by hand.
    #[error("the connection string is {len} bytes long, more than the {max} accepted")]
    ConnectionStringTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// No server is named.
    #[error("no server is named: give Server=host or Server=tcp:host,port")]
    MissingServer,
    /// A named instance without a port: milink does not ask SQL Server Browser.
    #[error(
        "a named instance needs its TCP port: write Server=host\\instance,port (the port is in \
         SQL Server Configuration Manager, or in the error log line 'Server is listening on')"
    )]
    NamedInstanceWithoutPort,
    /// A password without a login name.
    #[error("a Password is given without a User ID: give the SQL login's name")]
    MissingUser,
    /// A login name without a password.
    #[error("a User ID is given without a Password: give the SQL login's password")]
    MissingPassword,
    /// No way to log in is known (no SQL login, no token provider).
    #[error(
        "no credentials: give User ID and Password (a SQL login), or a Microsoft Entra token \
         provider"
    )]
    NoCredentials,
    /// The connection string asks for Entra authentication but no token provider was given.
    #[error(
        "Authentication={method} needs a Microsoft Entra token: supply a token provider with \
         ConnectOptions::with_token_provider"
    )]
    TokenProviderRequired {
        /// The method as written.
        method: String,
    },
    /// Integrated, Windows or Kerberos authentication, which milink does not support.
    #[error(
        "{found} asks for integrated (Windows/Kerberos) authentication, which milink does not \
         support: use a SQL login (User ID and Password) or a Microsoft Entra access token"
    )]
    IntegratedAuthentication {
        /// The setting as written, e.g. `Integrated Security=SSPI`.
        found: String,
    },
    /// `Encrypt=false` or `Optional`.
    #[error(
        "Encrypt={found} would let the link's traffic travel in clear: use Encrypt=Mandatory \
         (the default) or Encrypt=Strict"
    )]
    EncryptionOff {
        /// The value as written.
        found: String,
    },
    /// `TrustServerCertificate=true` together with a trusted CA file.
    #[error(
        "TrustServerCertificate=true and a trusted CA certificate exclude each other: keep the \
         CA certificate (it verifies the server) and drop TrustServerCertificate"
    )]
    ConflictingTrust,
    /// `TrustServerCertificate=true` with `Encrypt=Strict`, where SqlClient ignores it.
    #[error(
        "TrustServerCertificate=true has no effect with Encrypt=Strict: drop it, and give the \
         server's CA certificate (Server Certificate=path) if it is not in the system roots"
    )]
    TrustWithStrict,
    /// Something the connection string asks for that milink does not do.
    #[error("{key}: {what} is not supported; connect over TCP to a host and port")]
    Unsupported {
        /// The key.
        key: &'static str,
        /// What it asks for.
        what: &'static str,
    },
    /// A value that is not acceptable.
    #[error("invalid {key}: {reason}")]
    InvalidOption {
        /// The key or option.
        key: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The trusted CA certificate file could not be read.
    #[error("cannot read the trusted CA certificate {path}: {reason}; check the path")]
    TrustedCa {
        /// The path.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The token provider failed.
    #[error("no Microsoft Entra token: {0}; check the identity (az login, managed identity)")]
    Token(TokenError),
    /// The host name does not resolve.
    #[error("unknown host {host}: the name does not resolve; check Server= and DNS")]
    UnknownHost {
        /// The host.
        host: String,
    },
    /// Nothing listens on the port.
    #[error(
        "{host}:{port} refused the connection: SQL Server is not running or listens on another \
         port; check the port and the firewall"
    )]
    Refused {
        /// The host.
        host: String,
        /// The port.
        port: u16,
    },
    /// Another network failure (reset, unreachable).
    #[error("network failure talking to {host}:{port}: {message}")]
    Network {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// What the operating system said.
        message: String,
    },
    /// The TLS handshake failed, usually an untrusted or mismatched certificate.
    #[error(
        "TLS with {host} failed: {message}; make the server's certificate trusted (install its \
         CA in the system roots or give Server Certificate=path to the CA file), check that it \
         names the host (or set Host Name In Certificate), or, only on a network you trust, set \
         TrustServerCertificate=true"
    )]
    Tls {
        /// The host.
        host: String,
        /// What the TLS library said.
        message: String,
    },
    /// The server does not offer the encryption asked for.
    #[error(
        "{host} does not offer the encryption asked for ({message}): configure a certificate \
         on SQL Server, or use Encrypt=Mandatory if it predates TDS 8 (SQL Server 2022)"
    )]
    EncryptionUnavailable {
        /// The host.
        host: String,
        /// What the driver said.
        message: String,
    },
    /// Login failed (18456): wrong login name or password, or a disabled login.
    #[error(
        "login failed for {user} on {host} (error 18456): check the login name and password, \
         that the login is enabled, and that SQL Server accepts SQL logins (mixed mode)"
    )]
    BadCredentials {
        /// The login name (or `the Entra token` for token logins).
        user: String,
        /// The host.
        host: String,
    },
    /// The server refused the login with another error (4060 cannot open the database, …).
    #[error("{host} refused the login with error {number}: {message}")]
    LoginRefused {
        /// The host.
        host: String,
        /// The SQL Server error number.
        number: u32,
        /// The server's message.
        message: String,
    },
    /// Name resolution, TCP, TLS and login together took longer than the login timeout.
    #[error(
        "no login to {host}:{port} within {after:?}: the server or a firewall does not answer; \
         check the address, or raise Connect Timeout"
    )]
    LoginTimeout {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// The login timeout.
        after: Duration,
    },
    /// The server redirected the login more than once.
    #[error("{host}:{port} redirected the login again after a redirect; connect to it directly")]
    TooManyRedirects {
        /// The second redirect's host.
        host: String,
        /// Its port.
        port: u16,
    },
    /// The server answered outside the protocol.
    #[error("protocol error with {host}: {message}")]
    Protocol {
        /// The host.
        host: String,
        /// What the driver said.
        message: String,
    },
}

impl ConnectError {
    /// Whether trying again (after a pause) may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            ConnectError::Refused { .. }
            | ConnectError::Network { .. }
            | ConnectError::LoginTimeout { .. } => true,
            ConnectError::LoginRefused { number, .. } => is_transient_number(*number),
            ConnectError::Token(e) => e.transient,
            _ => false,
        }
    }
}

/// Why a statement failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// No connection could be set up.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// SQL Server answered with an error.
    #[error("SQL Server error {number} (state {state}, severity {class}){}: {message}", procedure_suffix(.procedure, *.line))]
    Server {
        /// The error number.
        number: u32,
        /// Its state.
        state: u8,
        /// Its severity.
        class: u8,
        /// The message.
        message: String,
        /// The procedure it came from, if any.
        procedure: String,
        /// The line.
        line: u32,
    },
    /// The statement did not finish within its kind's time limit; it may or may not have
    /// taken effect. The connection is dropped and opened again for the next statement.
    #[error(
        "the {kind} statement did not finish within {after:?}; it may or may not have taken \
         effect: check the server, or raise the {kind} command timeout"
    )]
    Timeout {
        /// Its kind.
        kind: CommandKind,
        /// The limit.
        after: Duration,
    },
    /// The connection broke during the statement.
    #[error("the connection broke during the statement: {message}")]
    ConnectionLost {
        /// What happened.
        message: String,
    },
    /// The server's answer could not be read.
    #[error("unreadable answer from SQL Server: {message}")]
    Protocol {
        /// What the driver said.
        message: String,
    },
}

fn procedure_suffix(procedure: &str, line: u32) -> String {
    if procedure.is_empty() {
        String::new()
    } else {
        format!(" in {procedure} line {line}")
    }
}

impl SqlError {
    /// The SQL Server error number, if the server answered with one.
    pub fn number(&self) -> Option<u32> {
        match self {
            SqlError::Server { number, .. } => Some(*number),
            SqlError::Connect(ConnectError::LoginRefused { number, .. }) => Some(*number),
            SqlError::Connect(ConnectError::BadCredentials { .. }) => Some(18456),
            _ => None,
        }
    }

    /// Whether trying again may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            SqlError::Connect(e) => e.is_transient(),
            SqlError::Server { number, .. } => is_transient_number(*number),
            SqlError::Timeout { .. } | SqlError::ConnectionLost { .. } => true,
            SqlError::Protocol { .. } => false,
        }
    }
}

impl From<ConnectError> for PortError {
    fn from(e: ConnectError) -> Self {
        SqlError::Connect(e).into()
    }
}

impl From<SqlError> for PortError {
    fn from(e: SqlError) -> Self {
        let kind = match &e {
            SqlError::Server { number, .. } => PortErrorKind::Sql(*number),
            SqlError::Timeout { .. } => PortErrorKind::Timeout,
            SqlError::ConnectionLost { .. } => PortErrorKind::Io,
            SqlError::Protocol { .. } => PortErrorKind::Other("protocol".to_owned()),
            SqlError::Connect(c) => match c {
                ConnectError::LoginTimeout { .. } => PortErrorKind::Timeout,
                ConnectError::UnknownHost { .. }
                | ConnectError::Refused { .. }
                | ConnectError::Network { .. } => PortErrorKind::Io,
                ConnectError::BadCredentials { .. } => PortErrorKind::Sql(18456),
                ConnectError::LoginRefused { number, .. } => PortErrorKind::Sql(*number),
                ConnectError::Tls { .. } | ConnectError::EncryptionUnavailable { .. } => {
                    PortErrorKind::Other("tls".to_owned())
                }
                ConnectError::Token(_) => PortErrorKind::Other("token".to_owned()),
                ConnectError::Protocol { .. } => PortErrorKind::Other("protocol".to_owned()),
                _ => PortErrorKind::Other("config".to_owned()),
            },
        };
        let transient = e.is_transient();
        PortError {
            kind,
            message: e.to_string(),
            transient,
            retry_after: None,
        }
    }
}
