//! The token cache on a fake credential that counts its calls, and a token login over loopback
//! TDS.

use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use azure_core::credentials::{AccessToken, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::StatusCode;
use azure_core::time::OffsetDateTime;

use super::*;

/// 2026-11-26T12:00:00Z.
const NOW_MS: u64 = 1_795_694_400_000;
const HOUR_MS: u64 = 3_600_000;
const MINUTE_MS: u64 = 60_000;

/// A clock the test moves.
#[derive(Debug, Default)]
struct ManualClock(AtomicU64);

impl ManualClock {
    fn at(ms: u64) -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicU64::new(ms)))
    }
    fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

/// Hands out `token-1`, `token-2`, … valid for an hour from the clock's now, or fails with the
/// scripted error kinds first.
#[derive(Debug)]
struct FakeCredential {
    calls: AtomicUsize,
    clock: Arc<ManualClock>,
    failures: StdMutex<Vec<ErrorKind>>,
    scopes: StdMutex<Vec<String>>,
}

impl FakeCredential {
    fn new(clock: &Arc<ManualClock>) -> Arc<FakeCredential> {
        Arc::new(FakeCredential {
            calls: AtomicUsize::new(0),
            clock: clock.clone(),
            failures: StdMutex::new(Vec::new()),
            scopes: StdMutex::new(Vec::new()),
        })
    }

    fn failing_with(self: Arc<Self>, kinds: Vec<ErrorKind>) -> Arc<Self> {
        *self.failures.lock().unwrap() = kinds;
        self
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TokenCredential for FakeCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.scopes
            .lock()
            .unwrap()
            .extend(scopes.iter().map(|s| (*s).to_owned()));
        let mut failures = self.failures.lock().unwrap();
        if !failures.is_empty() {
            let kind = failures.remove(0);
            return Err(azure_core::Error::with_message(
                kind,
                "AADSTS700016: Application with identifier 'milink' was not found",
            ));
        }
        let issued = self.clock.0.load(Ordering::SeqCst);
        let expires = i64::try_from((issued + HOUR_MS) / 1000).unwrap();
        Ok(AccessToken::new(
            format!("token-{n}"),
            OffsetDateTime::from_unix_timestamp(expires).unwrap(),
        ))
    }
}

fn tokens(credential: &Arc<FakeCredential>, clock: &Arc<ManualClock>) -> CredentialTokens {
    CredentialTokens::with_clock(credential.clone(), clock.clone())
}

#[tokio::test]
async fn a_token_is_fetched_once_for_the_sql_scope_and_cached() {
    let clock = ManualClock::at(NOW_MS);
    let credential = FakeCredential::new(&clock);
    let provider = tokens(&credential, &clock);
    assert_eq!(provider.token().await.unwrap().expose(), "token-1");
    clock.set(NOW_MS + 30 * MINUTE_MS);
    assert_eq!(provider.token().await.unwrap().expose(), "token-1");
    assert_eq!(credential.calls(), 1);
    assert_eq!(
        *credential.scopes.lock().unwrap(),
        ["https://database.windows.net/.default"]
    );
}

#[tokio::test]
async fn the_token_is_refreshed_five_minutes_before_it_expires() {
    let clock = ManualClock::at(NOW_MS);
    let credential = FakeCredential::new(&clock);
    let provider = tokens(&credential, &clock);
    assert_eq!(provider.token().await.unwrap().expose(), "token-1");
    // Just over five minutes left: still cached.
    clock.set(NOW_MS + 55 * MINUTE_MS - 1);
    assert_eq!(provider.token().await.unwrap().expose(), "token-1");
    assert_eq!(credential.calls(), 1);
    // Five minutes left: replaced.
    clock.set(NOW_MS + 55 * MINUTE_MS);
    assert_eq!(provider.token().await.unwrap().expose(), "token-2");
    assert_eq!(credential.calls(), 2);
    // The new one is cached in turn.
    clock.set(NOW_MS + 90 * MINUTE_MS);
    assert_eq!(provider.token().await.unwrap().expose(), "token-2");
    assert_eq!(credential.calls(), 2);
    // Invalidated: asked again.
    provider.invalidate().await;
    assert_eq!(provider.token().await.unwrap().expose(), "token-3");
}

#[tokio::test]
async fn concurrent_logins_share_one_request() {
    let clock = ManualClock::at(NOW_MS);
    let credential = FakeCredential::new(&clock);
    let provider = Arc::new(tokens(&credential, &clock));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let p = provider.clone();
            tokio::spawn(async move { p.token().await.unwrap().expose().to_owned() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), "token-1");
    }
    assert_eq!(credential.calls(), 1);
}

#[tokio::test]
async fn credential_errors_become_token_errors_without_a_token() {
    let clock = ManualClock::at(NOW_MS);
    let credential = FakeCredential::new(&clock).failing_with(vec![
        ErrorKind::Credential,
        ErrorKind::Io,
        ErrorKind::HttpResponse {
            status: StatusCode::TooManyRequests,
            error_code: None,
            raw_response: None,
        },
        ErrorKind::HttpResponse {
            status: StatusCode::Unauthorized,
            error_code: Some("invalid_client".into()),
            raw_response: None,
        },
    ]);
    let provider = tokens(&credential, &clock);
    let mut transient = Vec::new();
    for _ in 0..4 {
        let e = provider.token().await.unwrap_err();
        assert!(e.message.contains(AZURE_SQL_SCOPE), "{e}");
        assert!(e.message.contains("AADSTS700016"), "{e}");
        transient.push(e.transient);
    }
    assert_eq!(transient, [false, true, true, false]);
    // Failures are not cached: the next call asks again, and succeeds.
    assert_eq!(provider.token().await.unwrap().expose(), "token-5");
    assert_eq!(credential.calls(), 5);
}

#[tokio::test]
async fn debug_never_shows_the_token() {
    let clock = ManualClock::at(NOW_MS);
    let credential = FakeCredential::new(&clock);
    let provider = tokens(&credential, &clock);
    assert!(format!("{provider:?}").contains("none cached"));
    let token = provider.token().await.unwrap();
    let shown = format!("{provider:?} {token:?}");
    assert!(!shown.contains("token-1"), "{shown}");
    assert!(shown.contains("cached until"), "{shown}");
}

#[cfg(feature = "sim")]
mod loopback {
    use super::*;
    use crate::sim::tds::{Column, SqlType, Value as WireValue};
    use crate::sqlserver::connection::{CommandKind, Connection};
    use crate::sqlserver::testkit::{Lab, NeverTimer, bounded, rows};

    const TOKEN: &str = "token-1";

    #[tokio::test]
    async fn the_server_receives_the_credential_token_in_fedauth_and_accepts_it() {
        let lab = Lab::start_with_token(Some(TOKEN), |_| {
            vec![rows(
                vec![Column::new("one", SqlType::Int)],
                vec![vec![WireValue::Int(1)]],
            )]
        })
        .await;
        let clock = ManualClock::at(NOW_MS);
        let credential = FakeCredential::new(&clock);
        let provider = Arc::new(tokens(&credential, &clock));
        let options = lab
            .options_without_login()
            .token_provider(provider.clone())
            .build()
            .unwrap();
        let connection = Connection::new(options, Arc::new(NeverTimer));
        let sets = bounded(connection.simple_query("SELECT 1 AS one", CommandKind::Probe))
            .await
            .unwrap();
        assert_eq!(sets[0].rows[0].i64("one").unwrap(), 1);
        // A second login within the token's life reuses it.
        connection.close().await;
        bounded(connection.simple_query("SELECT 1 AS one", CommandKind::Probe))
            .await
            .unwrap();
        let logins = lab.logins();
        assert_eq!(logins.len(), 2);
        for login in &logins {
            assert_eq!(login.access_token.as_ref().map(|t| t.expose()), Some(TOKEN));
            assert!(login.user.is_empty() && login.password.is_empty());
        }
        assert_eq!(credential.calls(), 1);
        assert!(!format!("{connection:?}").contains(TOKEN));
    }

    #[tokio::test]
    async fn a_refused_token_is_a_login_error_without_the_token() {
        let lab = Lab::start_with_token(Some("another-token"), |_| Vec::new()).await;
        let clock = ManualClock::at(NOW_MS);
        let credential = FakeCredential::new(&clock);
        let options = lab
            .options_without_login()
            .token_provider(Arc::new(tokens(&credential, &clock)))
            .build()
            .unwrap();
        let connection = Connection::new(options, Arc::new(NeverTimer));
        let err = bounded(connection.simple_query("SELECT 1", CommandKind::Probe))
            .await
            .unwrap_err();
        assert_eq!(err.number(), Some(18456), "{err}");
        assert!(!err.to_string().contains(TOKEN), "{err}");
    }

    #[tokio::test]
    async fn a_failing_credential_fails_the_login_with_its_error() {
        let lab = Lab::start_with_token(Some(TOKEN), |_| Vec::new()).await;
        let clock = ManualClock::at(NOW_MS);
        let credential = FakeCredential::new(&clock).failing_with(vec![ErrorKind::Credential]);
        let options = lab
            .options_without_login()
            .token_provider(Arc::new(tokens(&credential, &clock)))
            .build()
            .unwrap();
        let connection = Connection::new(options, Arc::new(NeverTimer));
        let err = bounded(connection.simple_query("SELECT 1", CommandKind::Probe))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("AADSTS700016"), "{err}");
        assert!(!err.is_transient());
        assert!(lab.logins().is_empty(), "no login was attempted");
    }
}
