//! Options parsing, errors, and connections to loopback ports. No SQL Server is needed, except
//! by the ignored `live_` test.

use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use crate::ports::{PortError, PortErrorKind};
use crate::secret::Secret;
use crate::time::{Clock, SystemTimer, Timer, Timestamp};

use super::*;

const PASSWORD: &str = "Sup3r;S3cret'Pa\"ss";

fn parse(text: &str) -> ConnectOptions {
    ConnectOptions::from_connection_string(text).unwrap()
}

fn refuse(text: &str) -> ConnectError {
    ConnectOptions::from_connection_string(text).unwrap_err()
}

// ---------------------------------------------------------------- accepted forms

#[test]
fn server_forms() {
    let cases: &[(&str, &str, u16)] = &[
        ("Server=sql01;User ID=u;Password=p", "sql01", 1433),
        ("Server=sql01,1500;User ID=u;Password=p", "sql01", 1500),
        ("Server=tcp:sql01,1501;User ID=u;Password=p", "sql01", 1501),
        ("Server=tcp:sql01;User ID=u;Password=p", "sql01", 1433),
        ("Data Source=10.0.0.5, 1433;UID=u;PWD=p", "10.0.0.5", 1433),
        (
            "Address=sql01\\INST,49152;User=u;Password=p",
            "sql01",
            49152,
        ),
        ("Server=.;User ID=u;Password=p", "localhost", 1433),
        ("Server=(local);User ID=u;Password=p", "localhost", 1433),
        (
            "Server=tcp:mi1.abc123.database.windows.net,3342;User ID=u;Password=p",
            "mi1.abc123.database.windows.net",
            3342,
        ),
        ("Server=::1,1433;User ID=u;Password=p", "::1", 1433),
    ];
    for (text, host, port) in cases {
        let o = parse(text);
        assert_eq!((o.host(), o.port()), (*host, *port), "{text}");
    }
}

#[test]
fn defaults() {
    let o = parse("Server=sql01;User ID=milink;Password=p");
    assert_eq!(o.encryption(), Encryption::Mandatory);
    assert!(!o.trusts_server_certificate());
    assert_eq!(o.trusted_ca(), None);
    assert_eq!(o.database(), None);
    assert_eq!(o.login_timeout(), Duration::from_secs(30));
    assert_eq!(o.reconnect_attempts(), 2);
    assert_eq!(
        o.command_timeout(CommandKind::Probe),
        Duration::from_secs(15)
    );
    assert_eq!(
        o.command_timeout(CommandKind::Read),
        Duration::from_secs(120)
    );
    assert_eq!(
        o.command_timeout(CommandKind::Ddl),
        Duration::from_secs(900)
    );
    assert_eq!(
        o.command_timeout(CommandKind::Backup),
        Duration::from_secs(6 * 3600)
    );
    match o.authentication() {
        Some(Authentication::SqlLogin { user, password }) => {
            assert_eq!(user, "milink");
            assert_eq!(password.expose(), "p");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn settings_are_read() {
    let o = parse(
        "Server=sql01;Initial Catalog=master;User ID=u;Password=p;Encrypt=Strict;\
         Server Certificate=/etc/ssl/ca.pem;HostNameInCertificate=sql01.contoso.com;\
         Connect Timeout=5;ConnectRetryCount=4;ConnectRetryInterval=3;App=linker;\
         ApplicationIntent=ReadOnly;Pooling=false;Packet Size=8000;MultipleActiveResultSets=false;\
         Integrated Security=false;Column Encryption Setting=Disabled;Network Library=dbmssocn",
    );
    assert_eq!(o.database(), Some("master"));
    assert_eq!(o.encryption(), Encryption::Strict);
    assert_eq!(
        o.trusted_ca(),
        Some(std::path::Path::new("/etc/ssl/ca.pem"))
    );
    assert_eq!(o.login_timeout(), Duration::from_secs(5));
    assert_eq!(o.reconnect_attempts(), 4);
    assert_eq!(o.reconnect_delay, Duration::from_secs(3));
    assert_eq!(o.application_name, "linker");
    assert!(o.read_only_intent);
    assert_eq!(
        o.hostname_in_certificate.as_deref(),
        Some("sql01.contoso.com")
    );
}

#[test]
fn encrypt_values() {
    for v in ["true", "yes", "Mandatory", "TRUE"] {
        let o = parse(&format!("Server=s;User ID=u;Password=p;Encrypt={v}"));
        assert_eq!(o.encryption(), Encryption::Mandatory, "{v}");
    }
    let o = parse("Server=s;User ID=u;Password=p;Encrypt=strict");
    assert_eq!(o.encryption(), Encryption::Strict);
}

#[test]
fn trust_server_certificate_only_when_asked() {
    let o = parse("Server=s;User ID=u;Password=p;TrustServerCertificate=true");
    assert!(o.trusts_server_certificate());
    let o = parse("Server=s;User ID=u;Password=p;Trust Server Certificate=no");
    assert!(!o.trusts_server_certificate());
    let o = ConnectOptions::builder("s")
        .trust_server_certificate(true)
        .build()
        .unwrap();
    assert!(o.trusts_server_certificate());
}

#[test]
fn last_value_wins_like_sqlclient() {
    let o = parse("Server=a;Server=b,1500;User ID=u;Password=p1;Password=p2");
    assert_eq!((o.host(), o.port()), ("b", 1500));
    match o.authentication() {
        Some(Authentication::SqlLogin { password, .. }) => assert_eq!(password.expose(), "p2"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn entra_methods_wait_for_a_token_provider() {
    let o = parse("Server=mi.database.windows.net;Authentication=ActiveDirectoryDefault");
    assert!(o.authentication().is_none());
    assert_eq!(o.entra_method.as_deref(), Some("ActiveDirectoryDefault"));
    let o = o.with_token_provider(Arc::new(StaticToken::new(Secret::new("eyJtoken"))));
    assert!(matches!(
        o.authentication(),
        Some(Authentication::EntraToken(_))
    ));
    assert!(!format!("{o:?}").contains("eyJtoken"));
    // No credentials at all is fine at parse time: a provider may come from code.
    assert!(parse("Server=s").authentication().is_none());
    // A SQL login may be named explicitly.
    assert!(matches!(
        parse("Server=s;Authentication=SqlPassword;User ID=u;Password=p").authentication(),
        Some(Authentication::SqlLogin { .. })
    ));
}

#[test]
fn builder_sets_everything() {
    let o = ConnectOptions::builder("sql01")
        .port(1500)
        .database("db1")
        .sql_login("u", Secret::new("p"))
        .encryption(Encryption::Strict)
        .trusted_ca("/ca.der")
        .login_timeout(Duration::from_secs(7))
        .command_timeout(CommandKind::Ddl, Duration::from_secs(3600))
        .command_timeout(CommandKind::Probe, Duration::from_secs(2))
        .reconnect_attempts(0)
        .build()
        .unwrap();
    assert_eq!(o.port(), 1500);
    assert_eq!(o.database(), Some("db1"));
    assert_eq!(
        o.command_timeout(CommandKind::Ddl),
        Duration::from_secs(3600)
    );
    assert_eq!(
        o.command_timeout(CommandKind::Probe),
        Duration::from_secs(2)
    );
    assert_eq!(
        o.command_timeout(CommandKind::Backup),
        CommandKind::Backup.default_timeout()
    );
    assert_eq!(o.reconnect_attempts(), 0);
}

// ---------------------------------------------------------------- refused forms

#[test]
fn integrated_authentication_is_refused_with_the_alternatives() {
    for text in [
        "Server=s;Integrated Security=SSPI",
        "Server=s;Integrated Security=true",
        "Server=s;Trusted_Connection=yes",
        "Server=s;Authentication=ActiveDirectoryIntegrated",
        "Server=s;Authentication=Windows",
    ] {
        let e = refuse(text);
        assert!(
            matches!(e, ConnectError::IntegratedAuthentication { .. }),
            "{text}: {e:?}"
        );
        let m = e.to_string();
        assert!(m.contains("SQL login") && m.contains("Entra"), "{m}");
    }
}

#[test]
fn encryption_off_is_refused() {
    for v in ["false", "no", "Optional"] {
        let e = refuse(&format!("Server=s;User ID=u;Password=p;Encrypt={v}"));
        assert!(
            matches!(e, ConnectError::EncryptionOff { .. }),
            "{v}: {e:?}"
        );
        assert!(e.to_string().contains("Encrypt=Mandatory"), "{e}");
    }
    assert!(matches!(
        refuse("Server=s;Encrypt=maybe"),
        ConnectError::InvalidOption { key: "Encrypt", .. }
    ));
}

#[test]
fn conflicting_trust_is_refused() {
    assert_eq!(
        refuse("Server=s;TrustServerCertificate=true;Server Certificate=/ca.pem"),
        ConnectError::ConflictingTrust
    );
    assert_eq!(
        refuse("Server=s;TrustServerCertificate=true;Encrypt=Strict"),
        ConnectError::TrustWithStrict
    );
}

#[test]
fn other_transports_and_features_are_refused() {
    let cases: &[(&str, &str)] = &[
        (r"Server=np:\\host\pipe\sql\query", "named pipes"),
        ("Server=lpc:host", "shared memory"),
        ("Server=admin:host", "dedicated administrator"),
        ("Server=s;AttachDbFilename=c:\\x.mdf", "attaching"),
        ("Server=s;User Instance=true", "user instances"),
        ("Server=s;Failover Partner=s2", "mirroring"),
        ("Server=s;MultipleActiveResultSets=true", "MARS"),
        (
            "Server=s;Column Encryption Setting=Enabled",
            "Always Encrypted",
        ),
        ("Server=s;Network Library=dbnmpntw", "network libraries"),
    ];
    for (text, what) in cases {
        let e = refuse(text);
        assert!(
            matches!(e, ConnectError::Unsupported { .. }) && e.to_string().contains(what),
            "{text}: {e}"
        );
    }
    assert_eq!(
        refuse(r"Server=host\INST;User ID=u;Password=p"),
        ConnectError::NamedInstanceWithoutPort
    );
}

#[test]
fn incomplete_credentials_are_refused() {
    assert_eq!(refuse("Server=s;User ID=u"), ConnectError::MissingPassword);
    assert_eq!(refuse("Server=s;Password=p"), ConnectError::MissingUser);
    assert_eq!(
        refuse("Server=s;Authentication=SqlPassword"),
        ConnectError::MissingUser
    );
    assert!(matches!(
        refuse("Server=s;Authentication=Basic;User ID=u;Password=p"),
        ConnectError::InvalidOption {
            key: "Authentication",
            ..
        }
    ));
    assert_eq!(refuse("Database=x"), ConnectError::MissingServer);
}

#[test]
fn bad_values_are_refused() {
    for (text, key) in [
        ("Server=s;Connect Timeout=0", "Connect Timeout"),
        ("Server=s;Connect Timeout=soon", "Connect Timeout"),
        ("Server=s;Connect Timeout=-1", "Connect Timeout"),
        ("Server=s;ConnectRetryCount=11", "Connect Retry Count"),
        ("Server=s;ConnectRetryInterval=0", "Connect Retry Interval"),
        ("Server=s;ApplicationIntent=Sometimes", "Application Intent"),
        (
            "Server=s;TrustServerCertificate=perhaps",
            "Trust Server Certificate",
        ),
        ("Server=s;Integrated Security=maybe", "Integrated Security"),
    ] {
        match refuse(text) {
            ConnectError::InvalidOption { key: k, .. } => assert_eq!(k, key, "{text}"),
            e => panic!("{text}: {e:?}"),
        }
    }
    assert!(matches!(
        refuse("Server=s,0"),
        ConnectError::ConnectionString(_)
    ));
    assert!(matches!(
        refuse("Server=s,99999"),
        ConnectError::ConnectionString(_)
    ));
}

#[test]
fn hostile_strings_are_refused() {
    let long = format!(
        "Server=s;Password={}",
        "x".repeat(MAX_CONNECTION_STRING_LEN)
    );
    assert!(matches!(
        refuse(&long),
        ConnectError::ConnectionStringTooLong { .. }
    ));
    for text in [
        "Server=s;Password='unterminated",
        "Server=s;Password=ab\"",
        "=x;Server=s",
        "Server",
        "Server=evil\u{7}host",
    ] {
        assert!(
            matches!(refuse(text), ConnectError::ConnectionString(_)),
            "{text}"
        );
    }
    for text in [
        "Server='evil\u{7}host'",
        "Server=host name",
        "Server='host;Password=x'",
        "Server=-oProxyCommand=x",
        "Server=/etc/passwd",
        "Server=a@b",
    ] {
        assert!(
            matches!(
                refuse(text),
                ConnectError::InvalidOption {
                    key: "Data Source",
                    ..
                }
            ),
            "{text}: {:?}",
            refuse(text)
        );
    }
    let long_host = format!("Server={}", "a".repeat(300));
    assert!(matches!(
        refuse(&long_host),
        ConnectError::InvalidOption { .. }
    ));
    let long_db = format!("Server=s;Database={}", "d".repeat(129));
    assert!(matches!(
        refuse(&long_db),
        ConnectError::InvalidOption {
            key: "Database",
            ..
        }
    ));
    assert!(matches!(
        refuse("Server=s;Database='a\u{1}b'"),
        ConnectError::InvalidOption {
            key: "Database",
            ..
        }
    ));
    assert!(matches!(
        refuse("Server=s;User ID='a\nb';Password=p"),
        ConnectError::InvalidOption { key: "User ID", .. }
    ));
    let long_pw = format!("Server=s;User ID=u;Password={}", "p".repeat(129));
    assert!(matches!(
        refuse(&long_pw),
        ConnectError::InvalidOption {
            key: "Password",
            ..
        }
    ));
}

// ---------------------------------------------------------------- secrets

fn connection_string_with_password() -> String {
    format!(
        "Server=tcp:sql01,1433;User ID=milink;Password=\"{}\"",
        PASSWORD.replace('"', "\"\"")
    )
}

#[test]
fn the_password_never_shows() {
    let o = parse(&connection_string_with_password());
    match o.authentication() {
        Some(Authentication::SqlLogin { password, .. }) => assert_eq!(password.expose(), PASSWORD),
        other => panic!("{other:?}"),
    }
    let debug = format!("{o:?} {:?}", o.authentication());
    assert!(!debug.contains("S3cret"), "{debug}");
    let c = Connection::new(o, Arc::new(SystemTimer));
    assert!(!format!("{c:?}").contains("S3cret"));
}

#[test]
fn errors_never_show_the_password() {
    // Every refusal of a string that carries the password.
    let pw = format!("Password=\"{}\"", PASSWORD.replace('"', "\"\""));
    for text in [
        format!("Server=s;{pw};Integrated Security=SSPI"),
        format!("Server=s;{pw};Encrypt=false"),
        format!("Server=s;{pw}"),
        format!("Server=s;User ID=u;{pw};Encrypt=nope"),
        format!("Server=s;User ID=u;{pw};Password2='S3cret"),
        format!("Server=host name;User ID=u;{pw}"),
        format!("Server=s;User ID=u;{pw};TrustServerCertificate=true;Encrypt=Strict"),
        "Server=s;User ID=u;Password=S3cret\"".to_owned(),
        "Server=s;User ID=u;Password='S3cret".to_owned(),
    ] {
        let e = refuse(&text);
        for shown in [
            e.to_string(),
            format!("{e:?}"),
            PortError::from(e).to_string(),
        ] {
            assert!(!shown.contains("S3cret"), "{text}: {shown}");
        }
    }
}

#[tokio::test]
async fn connection_errors_never_show_the_password() {
    let port = refused_port().await;
    let o = ConnectOptions::builder("127.0.0.1")
        .port(port)
        .sql_login("milink", Secret::new(PASSWORD))
        .reconnect_attempts(0)
        .build()
        .unwrap();
    let e = Connection::new(o, Arc::new(NeverTimer))
        .simple_query("SELECT 1", CommandKind::Probe)
        .await
        .unwrap_err();
    for shown in [
        e.to_string(),
        format!("{e:?}"),
        PortError::from(e).to_string(),
    ] {
        assert!(!shown.contains("S3cret"), "{shown}");
    }
}

// ---------------------------------------------------------------- errors as port errors

#[test]
fn port_errors_carry_kind_and_transience() {
    let cases: Vec<(SqlError, PortErrorKind, bool)> = vec![
        (
            ConnectError::Refused {
                host: "h".into(),
                port: 1,
            }
            .into(),
            PortErrorKind::Io,
            true,
        ),
        (
            ConnectError::UnknownHost { host: "h".into() }.into(),
            PortErrorKind::Io,
            false,
        ),
        (
            ConnectError::LoginTimeout {
                host: "h".into(),
                port: 1,
                after: Duration::from_secs(1),
            }
            .into(),
            PortErrorKind::Timeout,
            true,
        ),
        (
            ConnectError::BadCredentials {
                user: "u".into(),
                host: "h".into(),
            }
            .into(),
            PortErrorKind::Sql(18456),
            false,
        ),
        (
            ConnectError::LoginRefused {
                host: "h".into(),
                number: 40613,
                message: "unavailable".into(),
            }
            .into(),
            PortErrorKind::Sql(40613),
            true,
        ),
        (
            ConnectError::Tls {
                host: "h".into(),
                message: "invalid peer certificate: UnknownIssuer".into(),
            }
            .into(),
            PortErrorKind::Other("tls".into()),
            false,
        ),
        (
            ConnectError::EncryptionOff {
                found: "false".into(),
            }
            .into(),
            PortErrorKind::Other("config".into()),
            false,
        ),
        (
            SqlError::Timeout {
                kind: CommandKind::Ddl,
                after: Duration::from_secs(900),
            },
            PortErrorKind::Timeout,
            true,
        ),
        (
            SqlError::ConnectionLost {
                message: "reset".into(),
            },
            PortErrorKind::Io,
            true,
        ),
    ];
    for (e, kind, transient) in cases {
        let p = PortError::from(e.clone());
        assert_eq!(p.kind, kind, "{e}");
        assert_eq!(p.transient, transient, "{e}");
        assert_eq!(p.message, e.to_string());
    }
    for (number, transient) in [
        (1205, true),
        (40197, true),
        (40613, true),
        (41962, false),
        (102, false),
    ] {
        let e = SqlError::Server {
            number,
            state: 1,
            class: 16,
            message: "m".into(),
            procedure: String::new(),
            line: 1,
        };
        assert_eq!(e.number(), Some(number));
        let p = PortError::from(e);
        assert_eq!(
            (p.kind, p.transient),
            (PortErrorKind::Sql(number), transient)
        );
    }
}

#[test]
fn messages_name_the_fix() {
    let tls = ConnectError::Tls {
        host: "sql01".into(),
        message: "invalid peer certificate: UnknownIssuer".into(),
    }
    .to_string();
    assert!(tls.contains("Server Certificate=") && tls.contains("TrustServerCertificate"));
    let login = ConnectError::BadCredentials {
        user: "milink".into(),
        host: "sql01".into(),
    }
    .to_string();
    assert!(login.contains("18456") && login.contains("milink") && login.contains("mixed mode"));
    let named = ConnectError::NamedInstanceWithoutPort.to_string();
    assert!(named.contains(r"host\instance,port"));
}

// ---------------------------------------------------------------- loopback connections

/// A timer whose sleeps never end: only the network decides.
struct NeverTimer;

impl Clock for NeverTimer {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(1_000_000)
    }
}

#[async_trait::async_trait]
impl Timer for NeverTimer {
    async fn sleep_until(&self, _deadline: Timestamp) {
        std::future::pending::<()>().await;
    }
}

/// A timer whose short sleeps (the reconnection pauses) end at once and whose long ones (the
/// login timeout) never end; it records every short sleep.
#[derive(Default)]
struct PauseTimer {
    pauses: StdMutex<Vec<Duration>>,
}

impl Clock for PauseTimer {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(1_000_000)
    }
}

#[async_trait::async_trait]
impl Timer for PauseTimer {
    async fn sleep_until(&self, deadline: Timestamp) {
        let d = deadline.since(self.now());
        if d <= Duration::from_secs(10) {
            self.pauses.lock().unwrap().push(d);
        } else {
            std::future::pending::<()>().await;
        }
    }
}

/// A timer that fires once the test opens its gate.
struct GateTimer(tokio::sync::watch::Receiver<bool>);

impl Clock for GateTimer {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(1_000_000)
    }
}

#[async_trait::async_trait]
impl Timer for GateTimer {
    async fn sleep_until(&self, _deadline: Timestamp) {
        let mut rx = self.0.clone();
        if rx.wait_for(|open| *open).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// A loopback port nothing listens on.
async fn refused_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

fn loopback(port: u16) -> ConnectOptionsBuilder {
    ConnectOptions::builder("127.0.0.1")
        .port(port)
        .sql_login("milink", Secret::new(PASSWORD))
}

/// A guard so a broken test fails instead of hanging; the tests never wait on it.
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("the test should not take this long")
}

#[tokio::test]
async fn a_refused_port_is_reported_as_refused() {
    let port = refused_port().await;
    let c = Connection::new(
        loopback(port).reconnect_attempts(0).build().unwrap(),
        Arc::new(NeverTimer),
    );
    let e = bounded(c.simple_query("SELECT 1", CommandKind::Probe))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        SqlError::Connect(ConnectError::Refused {
            host: "127.0.0.1".into(),
            port
        })
    );
    assert!(e.to_string().contains("refused the connection"), "{e}");
    let p = PortError::from(e);
    assert_eq!((p.kind, p.transient), (PortErrorKind::Io, true));
    assert!(!c.is_open().await);
}

#[tokio::test]
async fn refusals_are_retried_a_bounded_number_of_times() {
    let port = refused_port().await;
    let timer = Arc::new(PauseTimer::default());
    let c = Connection::new(
        loopback(port)
            .reconnect_attempts(3)
            .reconnect_delay(Duration::from_millis(500))
            .build()
            .unwrap(),
        timer.clone(),
    );
    let e = bounded(c.execute("SELECT 1", CommandKind::Ddl))
        .await
        .unwrap_err();
    assert!(matches!(e, SqlError::Connect(ConnectError::Refused { .. })));
    assert_eq!(
        *timer.pauses.lock().unwrap(),
        vec![
            Duration::from_millis(500),
            Duration::from_millis(1000),
            Duration::from_millis(2000)
        ]
    );
    // connect() follows the same rule.
    timer.pauses.lock().unwrap().clear();
    assert!(bounded(c.connect()).await.is_err());
    assert_eq!(timer.pauses.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn an_unknown_host_is_reported_as_unknown() {
    let o = ConnectOptions::builder("nonexistent.invalid")
        .sql_login("milink", Secret::new(PASSWORD))
        .reconnect_attempts(0)
        .build()
        .unwrap();
    let c = Connection::new(o, Arc::new(NeverTimer));
    let e = bounded(c.connect()).await.unwrap_err();
    assert_eq!(
        e,
        SqlError::Connect(ConnectError::UnknownHost {
            host: "nonexistent.invalid".into()
        })
    );
    assert!(e.to_string().contains("does not resolve"), "{e}");
    assert!(!PortError::from(e).transient);
}

#[tokio::test]
async fn a_silent_server_gives_the_login_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (open, gate) = tokio::sync::watch::channel(false);
    let c = Connection::new(
        loopback(port)
            .login_timeout(Duration::from_millis(200))
            .reconnect_attempts(0)
            .build()
            .unwrap(),
        Arc::new(GateTimer(gate)),
    );
    let server = async {
        // Accept the connection, read nothing, answer nothing; then let the timer fire.
        let (socket, _) = listener.accept().await.unwrap();
        open.send(true).unwrap();
        socket
    };
    let (result, _socket) = bounded(async { tokio::join!(c.connect(), server) }).await;
    let e = result.unwrap_err();
    assert_eq!(
        e,
        SqlError::Connect(ConnectError::LoginTimeout {
            host: "127.0.0.1".into(),
            port,
            after: Duration::from_millis(200)
        })
    );
    assert!(e.to_string().contains("Connect Timeout"), "{e}");
    let p = PortError::from(e);
    assert_eq!((p.kind, p.transient), (PortErrorKind::Timeout, true));
}

#[tokio::test]
async fn a_silent_server_times_out_with_the_system_timer() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let c = Connection::new(
        loopback(port)
            .login_timeout(Duration::from_millis(100))
            .reconnect_attempts(0)
            .build()
            .unwrap(),
        Arc::new(SystemTimer),
    );
    let server = async {
        let (socket, _) = listener.accept().await.unwrap();
        socket
    };
    let (result, _socket) = bounded(async { tokio::join!(c.connect(), server) }).await;
    assert!(matches!(
        result,
        Err(SqlError::Connect(ConnectError::LoginTimeout { .. }))
    ));
}

#[tokio::test]
async fn a_server_that_hangs_up_is_a_transient_network_failure() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let c = Connection::new(
        loopback(port).reconnect_attempts(0).build().unwrap(),
        Arc::new(NeverTimer),
    );
    let server = async {
        // Accept and close at once, before the prelogin answer.
        drop(listener.accept().await.unwrap());
    };
    let (result, ()) = bounded(async { tokio::join!(c.connect(), server) }).await;
    let e = result.unwrap_err();
    assert!(
        matches!(e, SqlError::Connect(ConnectError::Network { port: p, .. }) if p == port),
        "{e:?}"
    );
    let p = PortError::from(e);
    assert_eq!((p.kind, p.transient), (PortErrorKind::Io, true));
}

#[tokio::test]
async fn missing_credentials_are_reported_before_the_network() {
    let port = refused_port().await;
    let o = ConnectOptions::from_connection_string(&format!(
        "Server=tcp:127.0.0.1,{port};Authentication=ActiveDirectoryManagedIdentity"
    ))
    .unwrap();
    let e = bounded(Connection::new(o, Arc::new(NeverTimer)).connect())
        .await
        .unwrap_err();
    assert!(
        matches!(e, SqlError::Connect(ConnectError::TokenProviderRequired { ref method }) if method == "ActiveDirectoryManagedIdentity"),
        "{e:?}"
    );
    let o = ConnectOptions::builder("127.0.0.1")
        .port(port)
        .build()
        .unwrap();
    let e = bounded(Connection::new(o, Arc::new(NeverTimer)).connect())
        .await
        .unwrap_err();
    assert_eq!(e, SqlError::Connect(ConnectError::NoCredentials));
}

#[tokio::test]
async fn a_failing_token_provider_is_reported() {
    struct Failing;
    #[async_trait::async_trait]
    impl TokenProvider for Failing {
        async fn token(&self) -> Result<Secret, TokenError> {
            Err(TokenError::permanent("no managed identity on this host"))
        }
    }
    let o = ConnectOptions::builder("127.0.0.1")
        .token_provider(Arc::new(Failing))
        .build()
        .unwrap();
    let e = bounded(Connection::new(o, Arc::new(NeverTimer)).connect())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no managed identity"), "{e}");
    let p = PortError::from(e);
    assert_eq!(
        (p.kind, p.transient),
        (PortErrorKind::Other("token".into()), false)
    );
}

#[tokio::test]
async fn an_unreadable_ca_file_is_reported() {
    let port = refused_port().await;
    let o = loopback(port)
        .trusted_ca("/nonexistent/milink-ca.pem")
        .build()
        .unwrap();
    let e = bounded(Connection::new(o, Arc::new(NeverTimer)).connect())
        .await
        .unwrap_err();
    assert!(
        matches!(e, SqlError::Connect(ConnectError::TrustedCa { .. })),
        "{e:?}"
    );
}

// ---------------------------------------------------------------- a real server, on demand

#[tokio::test]
#[ignore = "needs a SQL Server: set MILINK_LIVE_SQLSERVER to a connection string"]
async fn live_select_version() {
    let Ok(text) = std::env::var("MILINK_LIVE_SQLSERVER") else {
        eprintln!("MILINK_LIVE_SQLSERVER is not set; nothing to do");
        return;
    };
    let options = ConnectOptions::from_connection_string(&text).unwrap();
    let c = Connection::new(options, Arc::new(SystemTimer));
    let sets = c
        .simple_query("SELECT @@VERSION AS version", CommandKind::Probe)
        .await
        .unwrap();
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].columns, vec!["version".to_owned()]);
    let version = sets[0].rows[0].str("version").unwrap().to_owned();
    assert!(version.contains("Microsoft SQL"), "{version}");
    c.execute("SET NOCOUNT ON", CommandKind::Probe)
        .await
        .unwrap();
    c.close().await;
}
