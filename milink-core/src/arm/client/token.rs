//! Bearer tokens for ARM from an `azure_core` [`TokenCredential`], cached until five minutes
//! before they expire (as `sqlserver::entra` does for the TDS login), with the credential's
//! call bounded in time. Nothing here shows a token: `Debug` says only whether one is cached.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use tokio::sync::Mutex;

use crate::ports::{PortError, PortErrorKind};
use crate::secret::Secret;
use crate::time::Clock;

/// How long before its expiry a cached token is replaced.
const REFRESH_BEFORE_EXPIRY_MS: i128 = 5 * 60 * 1000;

/// The error code of a credential that could not hand out a token.
pub(crate) const TOKEN_CODE: &str = "arm:token";

pub(crate) struct ArmTokens {
    credential: Arc<dyn TokenCredential>,
    clock: Arc<dyn Clock>,
    scope: String,
    timeout: Duration,
    cached: Mutex<Option<(Secret, i128)>>,
}

impl fmt::Debug for ArmTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.cached.try_lock() {
            Ok(slot) if slot.is_some() => "cached",
            Ok(_) => "none cached",
            Err(_) => "being fetched",
        };
        f.debug_struct("ArmTokens")
            .field("scope", &self.scope)
            .field("token", &state)
            .finish_non_exhaustive()
    }
}

impl ArmTokens {
    pub(crate) fn new(
        credential: Arc<dyn TokenCredential>,
        clock: Arc<dyn Clock>,
        scope: String,
        timeout: Duration,
    ) -> Self {
        ArmTokens {
            credential,
            clock,
            scope,
            timeout,
            cached: Mutex::new(None),
        }
    }

    /// Forgets the cached token (ARM refused it).
    pub(crate) async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    /// A token for the scope, from the cache while it has more than five minutes to live.
    pub(crate) async fn token(&self) -> Result<Secret, PortError> {
        let mut slot = self.cached.lock().await;
        let now = i128::from(self.clock.now().as_millis());
        if let Some((token, expires_at)) = slot.as_ref()
            && now + REFRESH_BEFORE_EXPIRY_MS < *expires_at
        {
            return Ok(token.clone());
        }
        let scopes = [self.scope.as_str()];
        let fresh = match tokio::time::timeout(
            self.timeout,
            self.credential.get_token(&scopes, None),
        )
        .await
        {
            Ok(Ok(token)) => token,
            Ok(Err(e)) => return Err(credential_error(&self.scope, &e)),
            Err(_) => {
                return Err(PortError::transient(
                    PortErrorKind::Timeout,
                    format!(
                        "the credential gave no token for {} within {} s; check that it can \
                             reach Microsoft Entra ID",
                        self.scope,
                        self.timeout.as_secs()
                    ),
                ));
            }
        };
        let token = Secret::new(fresh.token.secret());
        if token.is_empty() {
            return Err(PortError::permanent(
                TOKEN_CODE,
                format!("the credential returned an empty token for {}", self.scope),
            ));
        }
        let expires_at = fresh.expires_on.unix_timestamp_nanos() / 1_000_000;
        tracing::debug!(
            valid_for_s = (expires_at - now) / 1000,
            "Microsoft Entra token for ARM obtained"
        );
        *slot = Some((token.clone(), expires_at));
        Ok(token)
    }
}

/// A credential's failure: transient for I/O and connection failures, 408, 429 and 5xx.
fn credential_error(scope: &str, error: &azure_core::Error) -> PortError {
    use azure_core::error::ErrorKind;
    let message = format!("the credential could not get a token for {scope}: {error}");
    let transient = match error.kind() {
        ErrorKind::Io | ErrorKind::Connection => true,
        _ => error.http_status().is_some_and(|status| {
            let code = u16::from(status);
            code == 408 || code == 429 || (500..600).contains(&code)
        }),
    };
    if transient {
        PortError::transient(TOKEN_CODE, message)
    } else {
        PortError::permanent(TOKEN_CODE, message)
    }
}
