//! Microsoft Entra access tokens for the TDS connection from an `azure_core`
//! [`TokenCredential`] (feature `entra`): [`CredentialTokens`].
//!
//! Any credential of `azure_identity` (managed identity, client secret, workload identity, the
//! Azure CLI, …) becomes a [`TokenProvider`] for [`ConnectOptions::with_token_provider`]: it asks
//! for the Azure SQL scope [`AZURE_SQL_SCOPE`] and keeps the token until
//! [`REFRESH_BEFORE_EXPIRY`] (5 minutes) before it expires, so reconnections within a token's
//! life cost no round trip to Entra ID. Concurrent logins wait for one request.
//!
//! A credential that fails becomes a [`TokenError`] naming the scope and the credential's error
//! (which holds no token: there is none on failure); network failures, throttling (429) and
//! Entra ID's server errors are transient. Nothing here logs or shows a token: `Debug` says
//! only whether one is cached and until when.
//!
//! ```no_run
//! # fn demo(credential: std::sync::Arc<dyn azure_core::credentials::TokenCredential>)
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use milink_core::sqlserver::connection::ConnectOptions;
//! use milink_core::sqlserver::entra::CredentialTokens;
//!
//! let options = ConnectOptions::from_connection_string(
//!     "Server=tcp:tailspin-mi.a1b2c3d4e5f6.database.windows.net,1433;Authentication=ActiveDirectoryDefault",
//! )?
//! .with_token_provider(Arc::new(CredentialTokens::new(credential)));
//! # let _ = options; Ok(()) }
//! ```
//!
//! [`ConnectOptions::with_token_provider`]: super::connection::ConnectOptions::with_token_provider

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use tokio::sync::Mutex;

use crate::secret::Secret;
use crate::time::{Clock, SystemClock, Timestamp};

use super::connection::{TokenError, TokenProvider};

/// The scope of an access token for Azure SQL Database and Azure SQL Managed Instance.
pub const AZURE_SQL_SCOPE: &str = "https://database.windows.net/.default";

/// How long before its expiry a cached token is replaced.
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// A [`TokenProvider`] on an `azure_core` [`TokenCredential`], caching the token until
/// [`REFRESH_BEFORE_EXPIRY`] before it expires.
pub struct CredentialTokens {
    credential: Arc<dyn TokenCredential>,
    clock: Arc<dyn Clock>,
    cached: Mutex<Option<Cached>>,
}

struct Cached {
    token: Secret,
    /// Milliseconds since the Unix epoch (negative: already expired before 1970).
    expires_at: i128,
}

impl fmt::Debug for CredentialTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let expires = match self.cached.try_lock() {
            Ok(slot) => match slot.as_ref() {
                Some(c) => u64::try_from(c.expires_at)
                    .map(|ms| format!("cached until {}", Timestamp::from_millis(ms)))
                    .unwrap_or_else(|_| "cached, expired".to_owned()),
                None => "none cached".to_owned(),
            },
            Err(_) => "being fetched".to_owned(),
        };
        f.debug_struct("CredentialTokens")
            .field("scope", &AZURE_SQL_SCOPE)
            .field("token", &expires)
            .finish_non_exhaustive()
    }
}

impl CredentialTokens {
    /// Tokens from `credential`, judged against the system clock.
    pub fn new(credential: Arc<dyn TokenCredential>) -> Self {
        CredentialTokens::with_clock(credential, Arc::new(SystemClock))
    }

    /// Tokens from `credential`, judged against `clock`.
    pub fn with_clock(credential: Arc<dyn TokenCredential>, clock: Arc<dyn Clock>) -> Self {
        CredentialTokens {
            credential,
            clock,
            cached: Mutex::new(None),
        }
    }

    /// Forgets the cached token: the next login asks the credential again (e.g. after the
    /// server refused the token).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}

fn millis(t: Timestamp) -> i128 {
    i128::from(t.as_millis())
}

#[async_trait]
impl TokenProvider for CredentialTokens {
    async fn token(&self) -> Result<Secret, TokenError> {
        let mut slot = self.cached.lock().await;
        let margin = i128::from(u64::try_from(REFRESH_BEFORE_EXPIRY.as_millis()).unwrap_or(0));
        let now = millis(self.clock.now());
        if let Some(cached) = slot.as_ref()
            && now + margin < cached.expires_at
        {
            return Ok(cached.token.clone());
        }
        let fresh = self
            .credential
            .get_token(&[AZURE_SQL_SCOPE], None)
            .await
            .map_err(|e| token_error(&e))?;
        let token = Secret::new(fresh.token.secret());
        if token.is_empty() {
            return Err(TokenError::permanent(format!(
                "the credential returned an empty token for {AZURE_SQL_SCOPE}"
            )));
        }
        let expires_at = fresh.expires_on.unix_timestamp_nanos() / 1_000_000;
        tracing::debug!(
            valid_for_s = (expires_at - now) / 1000,
            "Microsoft Entra token for Azure SQL obtained"
        );
        *slot = Some(Cached {
            token: token.clone(),
            expires_at,
        });
        Ok(token)
    }
}

/// A credential's failure as a [`TokenError`]: transient for I/O and connection failures, 408,
/// 429 and 5xx answers; permanent otherwise (no identity, consent, a wrong tenant).
pub fn token_error(error: &azure_core::Error) -> TokenError {
    use azure_core::error::ErrorKind;
    let message = format!("the credential could not get a token for {AZURE_SQL_SCOPE}: {error}");
    let transient = match error.kind() {
        ErrorKind::Io | ErrorKind::Connection => true,
        _ => error.http_status().is_some_and(|status| {
            let code = u16::from(status);
            code == 408 || code == 429 || (500..600).contains(&code)
        }),
    };
    if transient {
        TokenError::transient(message)
    } else {
        TokenError::permanent(message)
    }
}

#[cfg(test)]
mod tests;
