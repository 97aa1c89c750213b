//! [`Connection`]: one TDS connection per session, serialized, lazily opened, reopened after
//! transient failures.

use std::sync::Arc;

use futures_util::TryStreamExt;
use tiberius::error::{Error as TdsError, IoErrorKind};
use tiberius::{AuthMethod, ColumnData, EncryptionLevel, FromSql, QueryItem};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use crate::secret::Secret;
use crate::sqlserver::rows::{DateTime, Row, Value};
use crate::time::Timer;

use super::error::{ConnectError, SqlError, is_transient_number};
use super::options::{Authentication, CommandKind, ConnectOptions, Encryption};

type TdsClient = tiberius::Client<Compat<TcpStream>>;

/// One result set of a query: its column names and its rows, each a [`Row`] of typed
/// [`Value`]s by column name.
///
/// Every conversion from the driver's rows happens in one place, `cell_value`, so the rest of
/// milink reads only [`Row`]s (the probe parsers in [`crate::sqlserver::parse`] among them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultSet {
    /// Column names, in order (empty strings for unnamed columns).
    pub columns: Vec<String>,
    /// Rows, each with one value per column, named as in [`ResultSet::columns`].
    pub rows: Vec<Row>,
}

impl ResultSet {
    fn push_row(&mut self, row: &tiberius::Row) {
        let mut out = Row::new();
        for (column, data) in row.cells() {
            out.push(column.name(), cell_value(data));
        }
        self.rows.push(out);
    }

    /// The index of the column called `name` (case-insensitive, as SQL Server compares
    /// names by default).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
    }
}

/// Days from the Julian day epoch to 1970-01-01.
const JULIAN_DAY_1970: i64 = 2_440_588;

/// A cell as a [`Value`], by its column type:
/// - `tinyint`, `smallint`, `int`, `bigint`: [`Value::Int`]; `bit`: [`Value::Bool`];
/// - `decimal`/`numeric(p, s)`: [`Value::Numeric`] with its unscaled value and scale
///   (`numeric(25,0)` LSNs exactly);
/// - `char`, `varchar`, `nchar`, `nvarchar`, `text`, `xml`: [`Value::String`];
/// - `binary`, `varbinary`, `image`: [`Value::Bytes`];
/// - `uniqueidentifier`: [`Value::Guid`], bytes in text order;
/// - `datetime`, `smalldatetime`, `datetime2`, `date`: [`Value::DateTime`] (a date at
///   midnight); `datetimeoffset`: its instant in UTC;
/// - `time` (no date) and `real`/`float`: [`Value::String`], as `hh:mm:ss.fffffff` and the
///   shortest decimal that reads back as the same number (no probe reads them);
/// - NULL of any type: [`Value::Null`].
fn cell_value(data: &ColumnData<'static>) -> Value {
    use tiberius::time::time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};
    fn ticks(t: Time) -> u64 {
        (u64::from(t.hour()) * 3600 + u64::from(t.minute()) * 60 + u64::from(t.second()))
            * 10_000_000
            + u64::from(t.nanosecond() / 100)
    }
    fn days(d: Date) -> i64 {
        i64::from(d.to_julian_day()) - JULIAN_DAY_1970
    }
    fn date_time(d: Date, t: Time) -> Value {
        // A time of day is less than a day: the ticks are in range.
        Value::DateTime(DateTime {
            days: days(d),
            ticks: ticks(t),
        })
    }
    fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
        v.map_or(Value::Null, f)
    }
    match data {
        ColumnData::U8(v) => opt(*v, |n| Value::Int(i64::from(n))),
        ColumnData::I16(v) => opt(*v, |n| Value::Int(i64::from(n))),
        ColumnData::I32(v) => opt(*v, |n| Value::Int(i64::from(n))),
        ColumnData::I64(v) => opt(*v, Value::Int),
        ColumnData::F32(v) => opt(*v, |n| Value::String(n.to_string())),
        ColumnData::F64(v) => opt(*v, |n| Value::String(n.to_string())),
        ColumnData::Bit(v) => opt(*v, Value::Bool),
        ColumnData::String(v) => opt(v.as_ref(), |s| Value::String(s.to_string())),
        ColumnData::Guid(v) => opt(*v, |g| Value::Guid(*g.as_bytes())),
        ColumnData::Binary(v) => opt(v.as_ref(), |b| Value::Bytes(b.to_vec())),
        ColumnData::Numeric(v) => opt(*v, |n| Value::Numeric {
            value: n.value(),
            scale: n.scale(),
        }),
        ColumnData::Xml(v) => opt(v.as_ref(), |x| Value::String(x.to_string())),
        ColumnData::DateTime(_) | ColumnData::SmallDateTime(_) | ColumnData::DateTime2(_) => {
            opt(PrimitiveDateTime::from_sql(data).ok().flatten(), |t| {
                date_time(t.date(), t.time())
            })
        }
        ColumnData::Date(_) => opt(Date::from_sql(data).ok().flatten(), |d| {
            date_time(d, Time::MIDNIGHT)
        }),
        ColumnData::Time(_) => opt(Time::from_sql(data).ok().flatten(), |t| {
            let secs = ticks(t) / 10_000_000;
            Value::String(format!(
                "{:02}:{:02}:{:02}.{:07}",
                secs / 3600,
                (secs / 60) % 60,
                secs % 60,
                ticks(t) % 10_000_000
            ))
        }),
        ColumnData::DateTimeOffset(_) => opt(OffsetDateTime::from_sql(data).ok().flatten(), |t| {
            let utc = t.to_offset(UtcOffset::UTC);
            date_time(utc.date(), utc.time())
        }),
    }
}

/// What a statement does with its answer.
#[derive(Clone, Copy)]
enum Op {
    /// Collect every result set.
    Query,
    /// Read the answer to its end and drop the rows.
    Execute,
}

/// One connection to SQL Server, for one session.
///
/// Statements are serialized (one at a time, in call order). The connection opens at the
/// first statement (or [`Connection::connect`]), follows one login redirect
/// (`Error::Routing`: Azure's gateway handing the login to the node), and after a failure that
/// broke it, opens again at the next statement.
///
/// A transient failure is followed by a pause (through the [`Timer`]) and another attempt, at
/// most [`ConnectOptions::reconnect_attempts`] times:
/// - failures to connect (refused, reset, login timeout, transient login errors): always;
/// - transient server errors ([`super::TRANSIENT_SQL_ERRORS`], where SQL Server did not run or
///   rolled back the statement): always;
/// - a statement whose outcome is unknown (its timeout passed, or the connection broke while
///   it ran): only for [`CommandKind::Probe`] and [`CommandKind::Read`]; DDL and backups come
///   back as a transient error for the caller, who knows whether the batch may run twice.
pub struct Connection {
    options: ConnectOptions,
    timer: Arc<dyn Timer>,
    client: Mutex<Option<TdsClient>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection with these options; nothing happens on the network until it is used.
    /// Every timeout and pause waits on `timer`.
    pub fn new(options: ConnectOptions, timer: Arc<dyn Timer>) -> Self {
        Connection {
            options,
            timer,
            client: Mutex::new(None),
        }
    }

    /// Its options.
    pub fn options(&self) -> &ConnectOptions {
        &self.options
    }

    /// Whether a connection is open now (it may still have been dropped by the server).
    pub async fn is_open(&self) -> bool {
        self.client.lock().await.is_some()
    }

    /// Opens the connection now, if it is not open, retrying transient failures as a statement
    /// would. Statements open it by themselves; this is for checking the options early.
    pub async fn connect(&self) -> Result<(), SqlError> {
        let mut slot = self.client.lock().await;
        let mut attempt = 0;
        loop {
            if slot.is_some() {
                return Ok(());
            }
            match self.open().await {
                Ok(client) => *slot = Some(client),
                Err(e) if e.is_transient() && attempt < self.options.reconnect_attempts => {
                    attempt += 1;
                    self.pause(attempt).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Closes the connection, if open; the next statement opens it again.
    pub async fn close(&self) {
        if let Some(client) = self.client.lock().await.take() {
            // The server notices the closed socket; a failed goodbye changes nothing.
            let _ = client.close().await;
        }
    }

    /// Runs a batch and returns every result set (a statement without rows, such as `SET`,
    /// returns none).
    pub async fn simple_query(
        &self,
        sql: &str,
        kind: CommandKind,
    ) -> Result<Vec<ResultSet>, SqlError> {
        self.run(sql, kind, Op::Query).await
    }

    /// Runs a batch of statements, reading their answer to the end and dropping any rows.
    pub async fn execute(&self, sql: &str, kind: CommandKind) -> Result<(), SqlError> {
        self.run(sql, kind, Op::Execute).await.map(|_| ())
    }

    async fn run(&self, sql: &str, kind: CommandKind, op: Op) -> Result<Vec<ResultSet>, SqlError> {
        let mut slot = self.client.lock().await;
        let mut attempt = 0;
        loop {
            match self.attempt(&mut slot, sql, kind, op).await {
                Ok(sets) => return Ok(sets),
                Err(e) if attempt < self.options.reconnect_attempts && may_repeat(&e, kind) => {
                    attempt += 1;
                    tracing::debug!(%e, attempt, "transient SQL Server failure, trying again");
                    self.pause(attempt).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn attempt(
        &self,
        slot: &mut Option<TdsClient>,
        sql: &str,
        kind: CommandKind,
        op: Op,
    ) -> Result<Vec<ResultSet>, SqlError> {
        let client = match slot {
            Some(client) => client,
            None => slot.insert(self.open().await?),
        };
        let limit = self.options.command_timeouts.get(kind);
        let deadline = self.timer.now().plus(limit);
        let outcome = tokio::select! {
            result = perform(client, sql, op) => Some(result),
            () = self.timer.sleep_until(deadline) => None,
        };
        match outcome {
            Some(Ok(sets)) => Ok(sets),
            Some(Err(e)) => {
                let e = statement_error(e);
                if !matches!(e, SqlError::Server { .. }) {
                    // The connection is out of step with the server: open a new one next time.
                    *slot = None;
                }
                Err(e)
            }
            None => {
                *slot = None;
                Err(SqlError::Timeout { kind, after: limit })
            }
        }
    }

    /// Waits before attempt `attempt` (1-based): the reconnect delay, doubled each time.
    async fn pause(&self, attempt: u32) {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        let delay = self.options.reconnect_delay.saturating_mul(factor);
        self.timer.sleep_until(self.timer.now().plus(delay)).await;
    }

    /// Opens a connection within the login timeout.
    async fn open(&self) -> Result<TdsClient, ConnectError> {
        let o = &self.options;
        let deadline = self.timer.now().plus(o.login_timeout);
        tokio::select! {
            result = self.login() => result,
            () = self.timer.sleep_until(deadline) => Err(ConnectError::LoginTimeout {
                host: o.host.clone(),
                port: o.port,
                after: o.login_timeout,
            }),
        }
    }

    async fn login(&self) -> Result<TdsClient, ConnectError> {
        let o = &self.options;
        let (auth, who) = match &o.authentication {
            Some(Authentication::SqlLogin { user, password }) => (
                Credentials::Sql {
                    user: user.clone(),
                    password: password.clone(),
                },
                user.clone(),
            ),
            Some(Authentication::EntraToken(provider)) => (
                Credentials::Token(provider.token().await.map_err(ConnectError::Token)?),
                "the Microsoft Entra token's identity".to_owned(),
            ),
            None => {
                return Err(match &o.entra_method {
                    Some(method) => ConnectError::TokenProviderRequired {
                        method: method.clone(),
                    },
                    None => ConnectError::NoCredentials,
                });
            }
        };
        let extra_ca = match &o.trusted_ca {
            Some(path) => Some(std::fs::read(path).map_err(|e| ConnectError::TrustedCa {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?),
            None => None,
        };
        let mut host = o.host.clone();
        let mut port = o.port;
        let mut redirected = false;
        loop {
            let config = self.config(&host, port, &auth, extra_ca.as_deref());
            let tcp = tcp_connect(&host, port).await?;
            match tiberius::Client::connect(config, tcp.compat_write()).await {
                Ok(client) => return Ok(client),
                Err(TdsError::Routing {
                    host: to_host,
                    port: to_port,
                }) => {
                    if redirected {
                        return Err(ConnectError::TooManyRedirects {
                            host: to_host,
                            port: to_port,
                        });
                    }
                    tracing::debug!(%to_host, to_port, "login redirected");
                    redirected = true;
                    host = to_host;
                    port = to_port;
                }
                Err(e) => return Err(login_error(e, &host, port, &who)),
            }
        }
    }

    fn config(
        &self,
        host: &str,
        port: u16,
        auth: &Credentials,
        extra_ca: Option<&[u8]>,
    ) -> tiberius::Config {
        let o = &self.options;
        let mut config = tiberius::Config::new();
        config.host(host);
        config.port(port);
        if let Some(db) = &o.database {
            config.database(db);
        }
        config.application_name(&o.application_name);
        config.encryption(match o.encryption {
            Encryption::Mandatory => EncryptionLevel::Required,
            Encryption::Strict => EncryptionLevel::Strict,
        });
        // The options refuse both at once, and tiberius would panic on it: keep the check.
        if o.trust_server_certificate {
            config.trust_cert();
        } else if let Some(bytes) = extra_ca {
            config.trust_cert_ca_bundle(bytes.to_vec());
        }
        if let Some(name) = &o.hostname_in_certificate {
            config.hostname_in_certificate(name);
        }
        config.readonly(o.read_only_intent);
        config.authentication(match auth {
            Credentials::Sql { user, password } => AuthMethod::sql_server(user, password.expose()),
            Credentials::Token(token) => AuthMethod::aad_token(token.expose()),
        });
        // Both limits are enforced here, through the Timer.
        config.handshake_timeout(None);
        config.command_timeout(None);
        config
    }
}

/// Credentials ready for one login.
enum Credentials {
    Sql { user: String, password: Secret },
    Token(Secret),
}

/// Resolves `host` and connects to the first address that answers.
async fn tcp_connect(host: &str, port: u16) -> Result<TcpStream, ConnectError> {
    let addresses: Vec<_> = match tokio::net::lookup_host((host, port)).await {
        Ok(addresses) => addresses.collect(),
        Err(_) => Vec::new(),
    };
    if addresses.is_empty() {
        return Err(ConnectError::UnknownHost {
            host: host.to_owned(),
        });
    }
    let mut last = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(tcp) => {
                // Latency matters more than throughput for TDS round trips; a failure here
                // only costs speed.
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => ConnectError::Refused {
            host: host.to_owned(),
            port,
        },
        Some(e) => ConnectError::Network {
            host: host.to_owned(),
            port,
            message: e.to_string(),
        },
        None => ConnectError::UnknownHost {
            host: host.to_owned(),
        },
    })
}

/// A driver error during login, by what it means for the user.
fn login_error(e: TdsError, host: &str, port: u16, who: &str) -> ConnectError {
    let host = host.to_owned();
    match e {
        TdsError::Server(token) if token.code() == 18456 => ConnectError::BadCredentials {
            user: who.to_owned(),
            host,
        },
        TdsError::Server(token) => ConnectError::LoginRefused {
            host,
            number: token.code(),
            message: token.message().to_owned(),
        },
        TdsError::Tls(message) => ConnectError::Tls { host, message },
        TdsError::Io {
            kind: IoErrorKind::ConnectionRefused,
            ..
        } => ConnectError::Refused { host, port },
        TdsError::Io { message, .. } => ConnectError::Network {
            host,
            port,
            message,
        },
        TdsError::Protocol(message) if message.contains("encryption") => {
            ConnectError::EncryptionUnavailable {
                host,
                message: message.into_owned(),
            }
        }
        other => ConnectError::Protocol {
            host,
            message: other.to_string(),
        },
    }
}

/// A driver error during a statement.
fn statement_error(e: TdsError) -> SqlError {
    match e {
        TdsError::Server(token) => SqlError::Server {
            number: token.code(),
            state: token.state(),
            class: token.class(),
            message: token.message().to_owned(),
            procedure: token.procedure().to_owned(),
            line: token.line(),
        },
        TdsError::Io { message, .. } => SqlError::ConnectionLost { message },
        other => SqlError::Protocol {
            message: other.to_string(),
        },
    }
}

/// Whether a failed statement may be sent again (see [`Connection`]).
fn may_repeat(e: &SqlError, kind: CommandKind) -> bool {
    match e {
        SqlError::Connect(c) => c.is_transient(),
        SqlError::Server { number, .. } => is_transient_number(*number),
        SqlError::Timeout { .. } | SqlError::ConnectionLost { .. } => {
            matches!(kind, CommandKind::Probe | CommandKind::Read)
        }
        SqlError::Protocol { .. } => false,
    }
}

/// Sends a batch and reads its whole answer.
async fn perform(client: &mut TdsClient, sql: &str, op: Op) -> Result<Vec<ResultSet>, TdsError> {
    let mut stream = client.simple_query(sql).await?;
    let mut sets: Vec<ResultSet> = Vec::new();
    while let Some(item) = stream.try_next().await? {
        match (op, item) {
            (Op::Execute, _) => {}
            (Op::Query, QueryItem::Metadata(meta)) => sets.push(ResultSet {
                columns: meta.columns().iter().map(|c| c.name().to_owned()).collect(),
                rows: Vec::new(),
            }),
            (Op::Query, QueryItem::Row(row)) => {
                if sets.is_empty() {
                    sets.push(ResultSet {
                        columns: row.columns().iter().map(|c| c.name().to_owned()).collect(),
                        rows: Vec::new(),
                    });
                }
                if let Some(set) = sets.last_mut() {
                    set.push_row(&row);
                }
            }
        }
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: T) {}

    #[test]
    fn futures_are_send() {
        let timer: Arc<dyn Timer> = Arc::new(crate::time::SystemTimer);
        let options = ConnectOptions::builder("localhost").build().unwrap();
        let c = Connection::new(options, timer);
        assert_send(c.simple_query("SELECT 1", CommandKind::Probe));
        assert_send(c.execute("SELECT 1", CommandKind::Probe));
        assert_send(c.connect());
    }

    #[test]
    fn transient_statement_errors_repeat_only_when_safe() {
        let lost = SqlError::ConnectionLost {
            message: "reset".into(),
        };
        assert!(may_repeat(&lost, CommandKind::Probe));
        assert!(!may_repeat(&lost, CommandKind::Ddl));
        assert!(!may_repeat(&lost, CommandKind::Backup));
        let deadlock = SqlError::Server {
            number: 1205,
            state: 1,
            class: 13,
            message: "deadlock".into(),
            procedure: String::new(),
            line: 1,
        };
        assert!(may_repeat(&deadlock, CommandKind::Ddl));
        let syntax = SqlError::Server {
            number: 102,
            state: 1,
            class: 15,
            message: "syntax".into(),
            procedure: String::new(),
            line: 1,
        };
        assert!(!may_repeat(&syntax, CommandKind::Probe));
    }

    #[test]
    fn cells_become_typed_values() {
        use tiberius::numeric::Numeric;
        let cases: Vec<(ColumnData<'static>, Value)> = vec![
            (ColumnData::U8(Some(250)), Value::Int(250)),
            (ColumnData::I16(Some(-3)), Value::Int(-3)),
            (ColumnData::I32(Some(-5)), Value::Int(-5)),
            (ColumnData::I64(Some(i64::MAX)), Value::Int(i64::MAX)),
            (ColumnData::Bit(Some(true)), Value::Bool(true)),
            (ColumnData::F64(Some(0.5)), Value::String("0.5".into())),
            (
                ColumnData::String(Some("Grüße".into())),
                Value::String("Grüße".into()),
            ),
            (
                ColumnData::Binary(Some(vec![0x0a, 0xff].into())),
                Value::Bytes(vec![0x0a, 0xff]),
            ),
            (
                ColumnData::Numeric(Some(Numeric::new_with_scale(
                    9_999_999_999_999_999_999_999_999,
                    0,
                ))),
                Value::Numeric {
                    value: 9_999_999_999_999_999_999_999_999,
                    scale: 0,
                },
            ),
            (
                ColumnData::Numeric(Some(Numeric::new_with_scale(-12_345, 2))),
                Value::Numeric {
                    value: -12_345,
                    scale: 2,
                },
            ),
            (
                ColumnData::Guid(Some(tiberius::Uuid::from_bytes([7; 16]))),
                Value::Guid([7; 16]),
            ),
            // 1970-01-02 00:00:01.5 as datetime (days since 1900, 1/300 s since midnight).
            (
                ColumnData::DateTime(Some(tiberius::time::DateTime::new(25_568, 450))),
                Value::DateTime(DateTime {
                    days: 1,
                    ticks: 15_000_000,
                }),
            ),
            // 2026-11-26 06:41:03.1234567 as datetime2(7) (days since 0001-01-01).
            (
                ColumnData::DateTime2(Some(tiberius::time::DateTime2::new(
                    tiberius::time::Date::new(719_162 + 20_783),
                    tiberius::time::Time::new(240_631_234_567, 7),
                ))),
                Value::DateTime(DateTime {
                    days: 20_783,
                    ticks: 240_631_234_567,
                }),
            ),
            (
                ColumnData::Date(Some(tiberius::time::Date::new(719_162))),
                Value::DateTime(DateTime { days: 0, ticks: 0 }),
            ),
            // 01:30 at +01:30 is midnight UTC.
            (
                ColumnData::DateTimeOffset(Some(tiberius::time::DateTimeOffset::new(
                    tiberius::time::DateTime2::new(
                        tiberius::time::Date::new(719_163),
                        tiberius::time::Time::new(0, 7),
                    ),
                    90,
                ))),
                Value::DateTime(DateTime { days: 1, ticks: 0 }),
            ),
            (
                ColumnData::Time(Some(tiberius::time::Time::new(36_610_000_001, 7))),
                Value::String("01:01:01.0000001".into()),
            ),
        ];
        for (data, expected) in cases {
            assert_eq!(cell_value(&data), expected, "{data:?}");
        }
        for null in [
            ColumnData::U8(None),
            ColumnData::I32(None),
            ColumnData::Bit(None),
            ColumnData::String(None),
            ColumnData::Binary(None),
            ColumnData::Numeric(None),
            ColumnData::Guid(None),
            ColumnData::DateTime(None),
            ColumnData::DateTime2(None),
            ColumnData::Time(None),
        ] {
            assert_eq!(cell_value(&null), Value::Null, "{null:?}");
        }
    }
}
