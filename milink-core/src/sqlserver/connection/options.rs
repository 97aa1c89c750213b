//! [`ConnectOptions`]: where and how to connect to SQL Server, built in code or read from an
//! ADO.NET connection string with SqlClient's rules.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::redirect::connection_string::{ConnectionString, DataSource, Keyword, Protocol};
use crate::secret::Secret;

use super::error::{ConnectError, TokenError};

/// The TCP port of a default SQL Server instance.
pub const DEFAULT_PORT: u16 = 1433;

/// The longest connection string accepted, in bytes. SqlClient has no limit; a longer text is
/// not a connection string anyone wrote by hand.
pub const MAX_CONNECTION_STRING_LEN: usize = 16 * 1024;

/// The longest host name accepted (DNS allows 253 characters).
const MAX_HOST_LEN: usize = 253;

/// The longest database or login name SQL Server accepts (`sysname`).
const MAX_SYSNAME_LEN: usize = 128;

/// The most reconnection attempts that may be configured.
pub const MAX_RECONNECT_ATTEMPTS: u32 = 10;

/// Supplies Microsoft Entra access tokens for the `https://database.windows.net/.default`
/// scope. The connection asks for a token at every login (and so after every reconnection);
/// caching is the provider's business.
#[async_trait]
pub trait TokenProvider: Send + Sync {
    /// An access token for Azure SQL.
    async fn token(&self) -> Result<Secret, TokenError>;
}

/// A [`TokenProvider`] that always hands out the same token, e.g. one obtained by
/// `az account get-access-token --resource https://database.windows.net`.
#[derive(Clone)]
pub struct StaticToken(Secret);

impl StaticToken {
    /// Wraps a token.
    pub fn new(token: Secret) -> Self {
        StaticToken(token)
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken(***)")
    }
}

#[async_trait]
impl TokenProvider for StaticToken {
    async fn token(&self) -> Result<Secret, TokenError> {
        Ok(self.0.clone())
    }
}

/// How the connection logs in.
#[derive(Clone)]
#[non_exhaustive]
pub enum Authentication {
    /// A SQL Server login (`User ID` and `Password`).
    SqlLogin {
        /// The login name.
        user: String,
        /// The password.
        password: Secret,
    },
    /// A Microsoft Entra access token from a provider.
    EntraToken(Arc<dyn TokenProvider>),
}

impl fmt::Debug for Authentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Authentication::SqlLogin { user, password } => f
                .debug_struct("SqlLogin")
                .field("user", user)
                .field("password", password)
                .finish(),
            Authentication::EntraToken(_) => f.write_str("EntraToken(..)"),
        }
    }
}

/// How the connection is encrypted. There is no unencrypted mode: the link's traffic carries
/// certificates and database content, so milink refuses `Encrypt=false` and `Optional`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encryption {
    /// TDS 7.4 with TLS negotiated after the prelogin (`Encrypt=Mandatory`/`true`, the
    /// default).
    #[default]
    Mandatory,
    /// TDS 8: TLS from the first byte (`Encrypt=Strict`), SQL Server 2022 and later.
    Strict,
}

/// What a statement is, which decides how long it may take ([`CommandTimeouts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CommandKind {
    /// A quick check (`SELECT @@VERSION`, a DMV row). Default 15 s.
    Probe,
    /// A read of catalog views or DMVs that may return many rows. Default 2 min.
    Read,
    /// Availability group and distributed availability group DDL, certificates, endpoints,
    /// database settings. Default 15 min.
    Ddl,
    /// `BACKUP DATABASE` / `BACKUP LOG`. Default 6 h.
    Backup,
}

impl CommandKind {
    /// Every kind.
    pub const ALL: [CommandKind; 4] = [
        CommandKind::Probe,
        CommandKind::Read,
        CommandKind::Ddl,
        CommandKind::Backup,
    ];

    /// The default time limit of this kind.
    pub const fn default_timeout(self) -> Duration {
        match self {
            CommandKind::Probe => Duration::from_secs(15),
            CommandKind::Read => Duration::from_secs(120),
            CommandKind::Ddl => Duration::from_secs(15 * 60),
            CommandKind::Backup => Duration::from_secs(6 * 3600),
        }
    }

    /// Its name, as messages show it.
    pub const fn name(self) -> &'static str {
        match self {
            CommandKind::Probe => "probe",
            CommandKind::Read => "read",
            CommandKind::Ddl => "DDL",
            CommandKind::Backup => "backup",
        }
    }
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The time limit of each [`CommandKind`]: from sending the statement to its last result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandTimeouts {
    probe: Duration,
    read: Duration,
    ddl: Duration,
    backup: Duration,
}

impl Default for CommandTimeouts {
    fn default() -> Self {
        CommandTimeouts {
            probe: CommandKind::Probe.default_timeout(),
            read: CommandKind::Read.default_timeout(),
            ddl: CommandKind::Ddl.default_timeout(),
            backup: CommandKind::Backup.default_timeout(),
        }
    }
}

impl CommandTimeouts {
    /// The limit for `kind`.
    pub fn get(&self, kind: CommandKind) -> Duration {
        match kind {
            CommandKind::Probe => self.probe,
            CommandKind::Read => self.read,
            CommandKind::Ddl => self.ddl,
            CommandKind::Backup => self.backup,
        }
    }

    /// Sets the limit for `kind`.
    pub fn set(&mut self, kind: CommandKind, limit: Duration) {
        match kind {
            CommandKind::Probe => self.probe = limit,
            CommandKind::Read => self.read = limit,
            CommandKind::Ddl => self.ddl = limit,
            CommandKind::Backup => self.backup = limit,
        }
    }
}

/// Where and how to connect to SQL Server. Build it with [`ConnectOptions::builder`] or
/// [`ConnectOptions::from_connection_string`]. `Debug` never shows the password.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) database: Option<String>,
    pub(super) authentication: Option<Authentication>,
    /// The Entra method a connection string asked for (`ActiveDirectoryDefault`, …) while no
    /// token provider is set yet.
    pub(super) entra_method: Option<String>,
    pub(super) encryption: Encryption,
    pub(super) trusted_ca: Option<PathBuf>,
    pub(super) trust_server_certificate: bool,
    pub(super) hostname_in_certificate: Option<String>,
    pub(super) application_name: String,
    pub(super) read_only_intent: bool,
    pub(super) login_timeout: Duration,
    pub(super) command_timeouts: CommandTimeouts,
    pub(super) reconnect_attempts: u32,
    pub(super) reconnect_delay: Duration,
}

impl ConnectOptions {
    /// The default login timeout: 30 s (SqlClient's 15 s is short for Azure's gateways).
    pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
    /// The default number of reconnections after a transient failure: 2.
    pub const DEFAULT_RECONNECT_ATTEMPTS: u32 = 2;
    /// The default pause before a reconnection: 1 s, doubled at each further attempt.
    pub const DEFAULT_RECONNECT_DELAY: Duration = Duration::from_secs(1);

    /// A builder for `host` (port 1433, mandatory encryption, system roots).
    pub fn builder(host: impl Into<String>) -> ConnectOptionsBuilder {
        ConnectOptionsBuilder {
            options: ConnectOptions {
                host: host.into(),
                port: DEFAULT_PORT,
                database: None,
                authentication: None,
                entra_method: None,
                encryption: Encryption::Mandatory,
                trusted_ca: None,
                trust_server_certificate: false,
                hostname_in_certificate: None,
                application_name: "milink".to_owned(),
                read_only_intent: false,
                login_timeout: Self::DEFAULT_LOGIN_TIMEOUT,
                command_timeouts: CommandTimeouts::default(),
                reconnect_attempts: Self::DEFAULT_RECONNECT_ATTEMPTS,
                reconnect_delay: Self::DEFAULT_RECONNECT_DELAY,
            },
        }
    }

    /// Reads an ADO.NET connection string with SqlClient's rules
    /// ([`crate::redirect::connection_string`]).
    ///
    /// Accepted: `Server`/`Data Source` as `host`, `host,port`, `tcp:host,port`,
    /// `host\instance,port` (the port wins, as in SqlClient), `.`/`(local)`/`localhost`;
    /// `Database`; `User ID` + `Password`; `Authentication=SqlPassword` or an Entra method
    /// (`ActiveDirectoryDefault`, `ActiveDirectoryManagedIdentity`, … — then a token provider
    /// must be given with [`ConnectOptions::with_token_provider`]); `Encrypt=true/yes/mandatory`
    /// (the default) or `strict`; `TrustServerCertificate`; `Server Certificate` (a CA file);
    /// `Host Name In Certificate`; `Connect Timeout` (seconds); `Connect Retry Count`;
    /// `Connect Retry Interval`; `Application Name`; `Application Intent`. Other keys
    /// (pooling, packet size, …) are ignored.
    ///
    /// Refused, with an error that says what to use instead: integrated, Windows or Kerberos
    /// authentication; `Encrypt=false/no/optional`; named pipes, shared memory and the
    /// dedicated administrator connection; a named instance without a port (SQL Server Browser
    /// is not used); `AttachDbFilename`, `User Instance`, `Failover Partner`, MARS, Always
    /// Encrypted; malformed, overlong or hostile text.
    pub fn from_connection_string(text: &str) -> Result<ConnectOptions, ConnectError> {
        if text.len() > MAX_CONNECTION_STRING_LEN {
            return Err(ConnectError::ConnectionStringTooLong {
                len: text.len(),
                max: MAX_CONNECTION_STRING_LEN,
            });
        }
        let cs = ConnectionString::parse(text)?;
        let source = cs.data_source()?.ok_or(ConnectError::MissingServer)?;
        let (host, port) = host_and_port(&source)?;
        let mut b = ConnectOptions::builder(host).port(port);

        if let Some(db) = value_of(&cs, Keyword::InitialCatalog) {
            b = b.database(db);
        }

        // Authentication.
        if let Some(value) = cs.get_keyword(Keyword::IntegratedSecurity) {
            match value.trim().to_ascii_lowercase().as_str() {
                "false" | "no" => {}
                "true" | "yes" | "sspi" => {
                    return Err(ConnectError::IntegratedAuthentication {
                        found: format!(
                            "{}={}",
                            cs.spelling("Integrated Security")
                                .unwrap_or("Integrated Security"),
                            value.trim()
                        ),
                    });
                }
                _ => {
                    return Err(invalid(
                        "Integrated Security",
                        "expected true, false or SSPI",
                    ));
                }
            }
        }
        let method = cs
            .get_keyword(Keyword::Authentication)
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty());
        let user = cs.get_keyword(Keyword::UserId).map(str::to_owned);
        let password = cs.secret("Password");
        match method.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("sqlpassword") => {
                match (user, password) {
                    (Some(user), Some(password)) => b = b.sql_login(user, password),
                    (Some(_), None) => return Err(ConnectError::MissingPassword),
                    (None, Some(_)) => return Err(ConnectError::MissingUser),
                    (None, None) if method.is_some() => return Err(ConnectError::MissingUser),
                    // No credentials: a token provider may still be given in code.
                    (None, None) => {}
                }
            }
            Some("activedirectoryintegrated" | "windows" | "integrated" | "kerberos") => {
                return Err(ConnectError::IntegratedAuthentication {
                    found: format!("Authentication={}", method.unwrap_or_default()),
                });
            }
            Some(m) if m.starts_with("activedirectory") => {
                b.options.entra_method = method.clone();
            }
            Some(_) => {
                return Err(invalid(
                    "Authentication",
                    "expected SqlPassword or an ActiveDirectory… (Microsoft Entra) method",
                ));
            }
        }

        // Encryption and trust.
        if let Some(value) = cs.get_keyword(Keyword::Encrypt) {
            match value.trim().to_ascii_lowercase().as_str() {
                "" | "true" | "yes" | "mandatory" => b = b.encryption(Encryption::Mandatory),
                "strict" => b = b.encryption(Encryption::Strict),
                "false" | "no" | "optional" => {
                    return Err(ConnectError::EncryptionOff {
                        found: value.trim().to_owned(),
                    });
                }
                _ => return Err(invalid("Encrypt", "expected Mandatory, Strict or true")),
            }
        }
        if let Some(value) = cs.get_keyword(Keyword::TrustServerCertificate)
            && parse_bool("Trust Server Certificate", value)?
        {
            b = b.trust_server_certificate(true);
        }
        if let Some(path) = value_of(&cs, Keyword::ServerCertificate) {
            b = b.trusted_ca(PathBuf::from(path));
        }
        if let Some(name) = value_of(&cs, Keyword::HostNameInCertificate) {
            b = b.hostname_in_certificate(name);
        }

        // Timeouts and retries.
        if let Some(value) = cs.get_keyword(Keyword::ConnectTimeout) {
            let secs = parse_u32("Connect Timeout", value)?;
            if secs == 0 {
                return Err(invalid(
                    "Connect Timeout",
                    "0 (wait forever) is not accepted: give a number of seconds",
                ));
            }
            b = b.login_timeout(Duration::from_secs(u64::from(secs)));
        }
        if let Some(value) = cs.get_keyword(Keyword::ConnectRetryCount) {
            b = b.reconnect_attempts(parse_u32("Connect Retry Count", value)?);
        }
        if let Some(value) = cs.get_keyword(Keyword::ConnectRetryInterval) {
            let secs = parse_u32("Connect Retry Interval", value)?;
            if !(1..=60).contains(&secs) {
                return Err(invalid(
                    "Connect Retry Interval",
                    "expected 1 to 60 seconds",
                ));
            }
            b = b.reconnect_delay(Duration::from_secs(u64::from(secs)));
        }

        // Identity of the client.
        if let Some(name) = value_of(&cs, Keyword::ApplicationName) {
            b = b.application_name(name);
        }
        if let Some(intent) = cs.get_keyword(Keyword::ApplicationIntent) {
            match intent.trim().to_ascii_lowercase().as_str() {
                "readwrite" => {}
                "readonly" => b = b.read_only_intent(true),
                _ => {
                    return Err(invalid(
                        "Application Intent",
                        "expected ReadWrite or ReadOnly",
                    ));
                }
            }
        }

        // What milink cannot do.
        for (keyword, what) in [
            (Keyword::AttachDbFilename, "attaching a database file"),
            (
                Keyword::FailoverPartner,
                "database mirroring failover partners",
            ),
        ] {
            if value_of(&cs, keyword).is_some() {
                return Err(ConnectError::Unsupported {
                    key: keyword.canonical(),
                    what,
                });
            }
        }
        for (keyword, what) in [
            (Keyword::UserInstance, "user instances"),
            (
                Keyword::MultipleActiveResultSets,
                "multiple active result sets (MARS)",
            ),
        ] {
            if let Some(value) = cs.get_keyword(keyword)
                && parse_bool(keyword.canonical(), value)?
            {
                return Err(ConnectError::Unsupported {
                    key: keyword.canonical(),
                    what,
                });
            }
        }
        if let Some(value) = value_of(&cs, Keyword::ColumnEncryptionSetting)
            && !value.eq_ignore_ascii_case("disabled")
        {
            return Err(ConnectError::Unsupported {
                key: Keyword::ColumnEncryptionSetting.canonical(),
                what: "Always Encrypted",
            });
        }
        if let Some(lib) = value_of(&cs, Keyword::NetworkLibrary)
            && !lib.eq_ignore_ascii_case("dbmssocn")
        {
            return Err(ConnectError::Unsupported {
                key: Keyword::NetworkLibrary.canonical(),
                what: "network libraries other than TCP (dbmssocn)",
            });
        }
        b.build()
    }

    /// The same options, logging in with a Microsoft Entra token from `provider` (replaces any
    /// SQL login).
    pub fn with_token_provider(mut self, provider: Arc<dyn TokenProvider>) -> Self {
        self.authentication = Some(Authentication::EntraToken(provider));
        self.entra_method = None;
        self
    }

    /// The host to connect to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database to open at login, if any (else the login's default database).
    pub fn database(&self) -> Option<&str> {
        self.database.as_deref()
    }

    /// How the connection logs in, once it is known.
    pub fn authentication(&self) -> Option<&Authentication> {
        self.authentication.as_ref()
    }

    /// The encryption mode.
    pub fn encryption(&self) -> Encryption {
        self.encryption
    }

    /// Whether the server's certificate is accepted without verification
    /// (`TrustServerCertificate=true`). Session status reports this: it leaves the connection
    /// open to a man in the middle.
    pub fn trusts_server_certificate(&self) -> bool {
        self.trust_server_certificate
    }

    /// The CA certificate file (PEM or DER) trusted besides the system roots, if any.
    pub fn trusted_ca(&self) -> Option<&std::path::Path> {
        self.trusted_ca.as_deref()
    }

    /// The login timeout: name resolution, TCP, TLS and login together.
    pub fn login_timeout(&self) -> Duration {
        self.login_timeout
    }

    /// The time limit of a statement of `kind`.
    pub fn command_timeout(&self, kind: CommandKind) -> Duration {
        self.command_timeouts.get(kind)
    }

    /// How many times a transient failure is followed by a reconnection and another attempt.
    pub fn reconnect_attempts(&self) -> u32 {
        self.reconnect_attempts
    }
}

/// Builds [`ConnectOptions`]; [`ConnectOptionsBuilder::build`] checks them.
#[derive(Debug, Clone)]
pub struct ConnectOptionsBuilder {
    options: ConnectOptions,
}

impl ConnectOptionsBuilder {
    /// The TCP port (default 1433).
    pub fn port(mut self, port: u16) -> Self {
        self.options.port = port;
        self
    }

    /// The database to open at login.
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.options.database = Some(database.into());
        self
    }

    /// Logs in with a SQL Server login.
    pub fn sql_login(mut self, user: impl Into<String>, password: Secret) -> Self {
        self.options.authentication = Some(Authentication::SqlLogin {
            user: user.into(),
            password,
        });
        self.options.entra_method = None;
        self
    }

    /// Logs in with a Microsoft Entra token from `provider`.
    pub fn token_provider(mut self, provider: Arc<dyn TokenProvider>) -> Self {
        self.options.authentication = Some(Authentication::EntraToken(provider));
        self.options.entra_method = None;
        self
    }

    /// The encryption mode (default [`Encryption::Mandatory`]).
    pub fn encryption(mut self, encryption: Encryption) -> Self {
        self.options.encryption = encryption;
        self
    }

    /// Trusts this CA certificate file (PEM or DER) besides the system roots.
    pub fn trusted_ca(mut self, path: impl Into<PathBuf>) -> Self {
        self.options.trusted_ca = Some(path.into());
        self
    }

    /// Accepts the server's certificate without verifying it. Only for a network you already
    /// trust; [`ConnectOptions::trusts_server_certificate`] reports it.
    pub fn trust_server_certificate(mut self, trust: bool) -> Self {
        self.options.trust_server_certificate = trust;
        self
    }

    /// The name the server certificate must carry, when it differs from the host (an IP
    /// address, a tunnel).
    pub fn hostname_in_certificate(mut self, name: impl Into<String>) -> Self {
        self.options.hostname_in_certificate = Some(name.into());
        self
    }

    /// The application name SQL Server shows in `sys.dm_exec_sessions` (default `milink`).
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.options.application_name = name.into();
        self
    }

    /// Declares read-only intent (`ApplicationIntent=ReadOnly`).
    pub fn read_only_intent(mut self, read_only: bool) -> Self {
        self.options.read_only_intent = read_only;
        self
    }

    /// The login timeout (default 30 s).
    pub fn login_timeout(mut self, timeout: Duration) -> Self {
        self.options.login_timeout = timeout;
        self
    }

    /// The time limit of statements of `kind` (defaults: [`CommandKind::default_timeout`]).
    pub fn command_timeout(mut self, kind: CommandKind, timeout: Duration) -> Self {
        self.options.command_timeouts.set(kind, timeout);
        self
    }

    /// How many reconnections follow a transient failure (default 2, at most 10).
    pub fn reconnect_attempts(mut self, attempts: u32) -> Self {
        self.options.reconnect_attempts = attempts;
        self
    }

    /// The pause before the first reconnection, doubled at each further one (default 1 s).
    pub fn reconnect_delay(mut self, delay: Duration) -> Self {
        self.options.reconnect_delay = delay;
        self
    }

    /// Checks the options.
    pub fn build(self) -> Result<ConnectOptions, ConnectError> {
        let o = self.options;
        check_host(&o.host)?;
        if o.port == 0 {
            return Err(invalid("port", "0 is not a TCP port"));
        }
        if let Some(db) = &o.database {
            check_sysname("Database", db)?;
        }
        if let Some(Authentication::SqlLogin { user, password }) = &o.authentication {
            check_sysname("User ID", user)?;
            if password.expose().contains('\0') || password.expose().len() > MAX_SYSNAME_LEN {
                return Err(invalid(
                    "Password",
                    "must be at most 128 characters without NUL",
                ));
            }
        }
        if let Some(name) = &o.hostname_in_certificate {
            check_host(name)
                .map_err(|_| invalid("Host Name In Certificate", "is not a valid host name"))?;
        }
        if o.trust_server_certificate && o.trusted_ca.is_some() {
            return Err(ConnectError::ConflictingTrust);
        }
        if o.trust_server_certificate && o.encryption == Encryption::Strict {
            return Err(ConnectError::TrustWithStrict);
        }
        if o.application_name.len() > MAX_SYSNAME_LEN
            || o.application_name.chars().any(char::is_control)
        {
            return Err(invalid(
                "Application Name",
                "must be at most 128 characters without control characters",
            ));
        }
        if o.login_timeout.is_zero() {
            return Err(invalid("Connect Timeout", "must be longer than zero"));
        }
        if CommandKind::ALL
            .iter()
            .any(|k| o.command_timeouts.get(*k).is_zero())
        {
            return Err(invalid("command timeout", "must be longer than zero"));
        }
        if o.reconnect_attempts > MAX_RECONNECT_ATTEMPTS {
            return Err(invalid("Connect Retry Count", "expected 0 to 10"));
        }
        Ok(o)
    }
}

/// The value of `keyword`, trimmed, unless it is absent or empty.
fn value_of(cs: &ConnectionString, keyword: Keyword) -> Option<&str> {
    cs.get_keyword(keyword)
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn invalid(key: &'static str, reason: &'static str) -> ConnectError {
    ConnectError::InvalidOption { key, reason }
}

fn parse_bool(key: &'static str, value: &str) -> Result<bool, ConnectError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(invalid(key, "expected true or false")),
    }
}

fn parse_u32(key: &'static str, value: &str) -> Result<u32, ConnectError> {
    value
        .trim()
        .parse::<u32>()
        .map_err(|_| invalid(key, "expected a whole number"))
}

/// The host and port of a TCP data source; what is not TCP is refused.
fn host_and_port(source: &DataSource) -> Result<(String, u16), ConnectError> {
    match source.protocol {
        Some(Protocol::NamedPipes) => {
            return Err(ConnectError::Unsupported {
                key: "Data Source",
                what: "named pipes (np:)",
            });
        }
        Some(Protocol::SharedMemory) => {
            return Err(ConnectError::Unsupported {
                key: "Data Source",
                what: "shared memory (lpc:)",
            });
        }
        Some(Protocol::Admin) => {
            return Err(ConnectError::Unsupported {
                key: "Data Source",
                what: "the dedicated administrator connection (admin:)",
            });
        }
        Some(Protocol::Tcp) | None => {}
    }
    let port = match (source.port, &source.instance) {
        (Some(port), _) => port.get(),
        (None, Some(_)) => return Err(ConnectError::NamedInstanceWithoutPort),
        (None, None) => DEFAULT_PORT,
    };
    let host = match source.host.to_ascii_lowercase().as_str() {
        "." | "(local)" | "(localdb)" => "localhost".to_owned(),
        _ => source.host.clone(),
    };
    check_host(&host)?;
    Ok((host, port))
}

/// A DNS name or an IP address: letters, digits, `-`, `_`, `.`, and `:` for IPv6.
fn check_host(host: &str) -> Result<(), ConnectError> {
    if host.is_empty() {
        return Err(ConnectError::MissingServer);
    }
    let ok = host.len() <= MAX_HOST_LEN
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        && !host.starts_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "Data Source",
            "the host must be a DNS name or an IP address (letters, digits, '-', '.', ':')",
        ))
    }
}

fn check_sysname(key: &'static str, value: &str) -> Result<(), ConnectError> {
    if value.is_empty()
        || value.chars().count() > MAX_SYSNAME_LEN
        || value.chars().any(char::is_control)
    {
        return Err(invalid(
            key,
            "must be 1 to 128 characters without control characters",
        ));
    }
    Ok(())
}
