//! [`ArmOptions`]: where ARM is, how long to wait for it and for tokens, how often to retry.

use std::fmt;
use std::time::Duration;

use crate::arm::MANAGEMENT_ENDPOINT;

/// The `User-Agent` the adapter sends.
pub const USER_AGENT: &str = concat!("milink/", env!("CARGO_PKG_VERSION"));

/// How the ARM adapter reaches Azure Resource Manager. Build it with [`ArmOptions::builder`];
/// [`ArmOptions::default`] is the public cloud with the defaults documented on each setter.
#[derive(Clone, PartialEq, Eq)]
pub struct ArmOptions {
    pub(crate) endpoint: String,
    pub(crate) scope: String,
    pub(crate) extra_root_der: Vec<Vec<u8>>,
    pub(crate) request_timeout: Duration,
    pub(crate) token_timeout: Duration,
    pub(crate) max_retries: u32,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_retry_after: Duration,
    pub(crate) user_agent: String,
}

impl fmt::Debug for ArmOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArmOptions")
            .field("endpoint", &self.endpoint)
            .field("scope", &self.scope)
            .field("extra_roots", &self.extra_root_der.len())
            .field("request_timeout", &self.request_timeout)
            .field("token_timeout", &self.token_timeout)
            .field("max_retries", &self.max_retries)
            .field("max_retry_after", &self.max_retry_after)
            .finish_non_exhaustive()
    }
}

impl Default for ArmOptions {
    fn default() -> Self {
        ArmOptions::builder().build()
    }
}

impl ArmOptions {
    /// A builder starting from the public cloud's defaults.
    pub fn builder() -> ArmOptionsBuilder {
        ArmOptionsBuilder {
            options: ArmOptions {
                endpoint: MANAGEMENT_ENDPOINT.to_owned(),
                scope: scope_of(MANAGEMENT_ENDPOINT),
                extra_root_der: Vec::new(),
                request_timeout: Duration::from_secs(60),
                token_timeout: Duration::from_secs(30),
                max_retries: 4,
                initial_backoff: Duration::from_secs(1),
                max_retry_after: Duration::from_secs(60),
                user_agent: USER_AGENT.to_owned(),
            },
            scope_set: false,
        }
    }

    /// The management endpoint, without a trailing `/`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The token scope asked of the credential (`<endpoint>/.default` unless set).
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The longest a single HTTP request may take.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The longest the credential may take to hand out a token.
    pub fn token_timeout(&self) -> Duration {
        self.token_timeout
    }

    /// How many times a 408, 429 or 5xx answer is retried before it is returned.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The longest `Retry-After` honoured; a longer hint waits this long.
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }
}

fn scope_of(endpoint: &str) -> String {
    format!("{}/.default", endpoint.trim_end_matches('/'))
}

/// Builds [`ArmOptions`].
#[derive(Debug, Clone)]
pub struct ArmOptionsBuilder {
    options: ArmOptions,
    scope_set: bool,
}

impl ArmOptionsBuilder {
    /// The management endpoint (default `https://management.azure.com`; a sovereign cloud's,
    /// e.g. `https://management.usgovcloudapi.net`). The token scope follows it unless set with
    /// [`ArmOptionsBuilder::scope`].
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        let endpoint: String = endpoint.into();
        self.options.endpoint = endpoint.trim_end_matches('/').to_owned();
        if !self.scope_set {
            self.options.scope = scope_of(&self.options.endpoint);
        }
        self
    }

    /// The token scope, when it is not `<endpoint>/.default`.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.options.scope = scope.into();
        self.scope_set = true;
        self
    }

    /// Trusts one more root certificate (DER), next to the platform's, e.g. a test server's.
    /// Certificate verification always stays on.
    pub fn trust_root_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.options.extra_root_der.push(der.into());
        self
    }

    /// The longest a single HTTP request may take, connection included (default 60 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.options.request_timeout = timeout;
        self
    }

    /// The longest the credential may take to hand out a token (default 30 s; an offline
    /// credential retrying on its own can otherwise take about 80 s to fail).
    pub fn token_timeout(mut self, timeout: Duration) -> Self {
        self.options.token_timeout = timeout;
        self
    }

    /// How many times a 408, 429 or 5xx answer is retried (default 4; 0 sends once).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.options.max_retries = retries;
        self
    }

    /// The first wait between retries when the answer has no `Retry-After` (default 1 s,
    /// doubling each time up to [`ArmOptionsBuilder::max_retry_after`]).
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.options.initial_backoff = backoff;
        self
    }

    /// The longest `Retry-After` honoured (default 60 s).
    pub fn max_retry_after(mut self, cap: Duration) -> Self {
        self.options.max_retry_after = cap;
        self
    }

    /// The options.
    pub fn build(self) -> ArmOptions {
        self.options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_follows_the_endpoint_unless_set() {
        let public = ArmOptions::default();
        assert_eq!(public.endpoint(), "https://management.azure.com");
        assert_eq!(public.scope(), "https://management.azure.com/.default");
        let gov = ArmOptions::builder()
            .endpoint("https://management.usgovcloudapi.net/")
            .build();
        assert_eq!(gov.endpoint(), "https://management.usgovcloudapi.net");
        assert_eq!(gov.scope(), "https://management.usgovcloudapi.net/.default");
        let custom = ArmOptions::builder()
            .scope("https://management.core.windows.net/.default")
            .endpoint("https://example.invalid")
            .build();
        assert_eq!(
            custom.scope(),
            "https://management.core.windows.net/.default"
        );
        assert!(USER_AGENT.starts_with("milink/"));
    }
}
