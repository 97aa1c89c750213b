//! Test support for the loopback tests of this module's readers: a scripted TDS server on
//! `127.0.0.1:0` (the simulator's protocol layer with a handler that answers by closure and
//! counts what it was sent), and a [`Connection`] to it that trusts its certificate.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::secret::Secret;
use crate::sim::tds::{
    Column, Login, Outcome, Param, ResultSet as WireSet, SessionInfo, SqlError as WireError,
    SqlType, TdsHandler, TdsServer, TdsServerConfig, Value as WireValue,
};
use crate::sqlserver::connection::{ConnectOptions, ConnectOptionsBuilder, Connection, Encryption};
use crate::time::{Clock, Timer, Timestamp};

pub(crate) const USER: &str = "milink";
pub(crate) const PASSWORD: &str = "S3cret!pw";

type Answer = dyn Fn(&str) -> Vec<Outcome> + Send + Sync;

/// Answers batches with a closure and records them; accepts the SQL login [`USER`] /
/// [`PASSWORD`] and, when set, one access token.
pub(crate) struct Scripted {
    answer: Box<Answer>,
    token: Option<String>,
    seen: Mutex<Vec<String>>,
    logins: Mutex<Vec<Login>>,
}

#[async_trait]
impl TdsHandler for Scripted {
    async fn login(&self, login: &Login) -> Result<(), WireError> {
        self.logins.lock().unwrap().push(login.clone());
        let password_ok = login.user == USER && login.password.expose() == PASSWORD;
        let token_ok = match (&self.token, &login.access_token) {
            (Some(expected), Some(got)) => got.expose() == expected,
            _ => false,
        };
        if password_ok || token_ok {
            Ok(())
        } else {
            Err(WireError::login_failed(&login.user))
        }
    }

    async fn batch(&self, _session: &SessionInfo, sql: &str, _params: &[Param]) -> Vec<Outcome> {
        self.seen.lock().unwrap().push(sql.to_owned());
        (self.answer)(sql)
    }
}

/// A scripted server and the certificate file its clients trust.
pub(crate) struct Lab {
    pub(crate) server: TdsServer,
    scripted: Option<Arc<Scripted>>,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl Lab {
    /// A server answering with `answer`.
    pub(crate) async fn start(
        answer: impl Fn(&str) -> Vec<Outcome> + Send + Sync + 'static,
    ) -> Lab {
        Lab::start_with_token(None, answer).await
    }

    /// A server that also accepts the access token `token`.
    pub(crate) async fn start_with_token(
        token: Option<&str>,
        answer: impl Fn(&str) -> Vec<Outcome> + Send + Sync + 'static,
    ) -> Lab {
        let handler = Arc::new(Scripted {
            answer: Box::new(answer),
            token: token.map(str::to_owned),
            seen: Mutex::new(Vec::new()),
            logins: Mutex::new(Vec::new()),
        });
        let mut lab = Lab::serve(handler.clone()).await;
        lab.scripted = Some(handler);
        lab
    }

    /// A server answering with `handler`.
    pub(crate) async fn serve(handler: Arc<dyn TdsHandler>) -> Lab {
        let server = TdsServer::start(TdsServerConfig::default(), handler)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("server.der");
        std::fs::write(&ca, server.certificate_der()).unwrap();
        Lab {
            server,
            scripted: None,
            ca,
            _dir: dir,
        }
    }

    fn scripted(&self) -> &Scripted {
        self.scripted.as_deref().expect("a scripted lab")
    }

    /// Options for this server, without credentials: the certificate trusted, no retries.
    pub(crate) fn options_without_login(&self) -> ConnectOptionsBuilder {
        ConnectOptions::builder("127.0.0.1")
            .port(self.server.addr().port())
            .encryption(Encryption::Mandatory)
            .trusted_ca(&self.ca)
            .reconnect_attempts(0)
    }

    /// A connection with the SQL login, timed by a timer that never fires.
    pub(crate) fn connection(&self) -> Connection {
        let options = self
            .options_without_login()
            .sql_login(USER, Secret::new(PASSWORD))
            .build()
            .unwrap();
        Connection::new(options, Arc::new(NeverTimer))
    }

    /// The batches received, in order.
    pub(crate) fn seen(&self) -> Vec<String> {
        self.scripted().seen.lock().unwrap().clone()
    }

    /// The logins received, in order.
    #[cfg_attr(not(feature = "entra"), allow(dead_code))]
    pub(crate) fn logins(&self) -> Vec<Login> {
        self.scripted().logins.lock().unwrap().clone()
    }
}

/// A timer whose sleeps never end: only the server decides.
pub(crate) struct NeverTimer;

impl Clock for NeverTimer {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(1_000_000)
    }
}

#[async_trait]
impl Timer for NeverTimer {
    async fn sleep_until(&self, _deadline: Timestamp) {
        std::future::pending::<()>().await;
    }
}

/// A guard so a broken test fails instead of hanging; the tests never wait on it.
pub(crate) async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("the test should not take this long")
}

/// One result set.
pub(crate) fn rows(columns: Vec<Column>, rows: Vec<Vec<WireValue>>) -> Outcome {
    Outcome::Rows(WireSet { columns, rows })
}

/// An error of class 16.
pub(crate) fn error(number: u32, message: &str) -> Outcome {
    Outcome::Error(WireError::new(number, 16, message))
}

/// An `nvarchar(256)` column.
pub(crate) fn nvarchar(name: &str) -> Column {
    Column::new(name, SqlType::NVarChar(Some(256)))
}

/// A string value.
pub(crate) fn s(text: &str) -> WireValue {
    WireValue::String(text.to_owned())
}
