//! One ARM call over HTTPS: the bearer token, a fresh `x-ms-client-request-id`, retries of 408,
//! 429 and 5xx on the caller's [`Timer`] honouring `Retry-After` (seconds or an HTTP date)
//! within a cap, a bounded body, and the answer or a typed [`PortError`].
//!
//! An answer the caller does not accept becomes a [`PortError`] through
//! [`crate::arm::errors::response_error`], the one mapping of ARM's answers (409 causes and
//! fixes, the permission a 401/403 needs, transience), with the client's request id added.

use std::error::Error as _;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;

use crate::arm::errors::response_error;
use crate::arm::{ArmRequest, Method};
use crate::ports::{PortError, PortErrorKind};
use crate::time::Timer;

use super::ArmManagedInstance;

/// The most of a body the adapter reads; a longer body is an error, not a truncated read.
pub(crate) const MAX_BODY: usize = 1024 * 1024;

/// What ARM answered, with the headers the adapter reads.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) azure_async_operation: Option<String>,
    pub(crate) location: Option<String>,
    /// `x-ms-ratelimit-remaining-subscription-reads`: the reads ARM says are left.
    pub(crate) remaining_reads: Option<u32>,
    pub(crate) request_ids: RequestIds,
    pub(crate) body: Vec<u8>,
}

/// The ids ARM's support asks for about a failed call.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestIds {
    pub(crate) client: String,
    pub(crate) request: Option<String>,
    pub(crate) correlation: Option<String>,
}

impl RequestIds {
    fn describe(&self) -> String {
        format!(
            "x-ms-client-request-id {}, x-ms-request-id {}, x-ms-correlation-request-id {}",
            self.client,
            self.request.as_deref().unwrap_or("-"),
            self.correlation.as_deref().unwrap_or("-"),
        )
    }
}

impl Answer {
    /// Whether the answer is a success (2xx).
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON (`Value::Null` for an empty body).
    pub(crate) fn json(&self, what: &str) -> Result<Value, PortError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            PortError::permanent(
                MALFORMED,
                format!(
                    "ARM answered {} to {what} with a body that is not the expected JSON ({e}; {})",
                    self.status,
                    self.request_ids.describe()
                ),
            )
        })
    }

    /// The answer to `request` as an error, for a status the caller does not accept.
    pub(crate) fn error(&self, request: &ArmRequest) -> PortError {
        let retry_after = self.retry_after.map(|d| d.as_secs().to_string());
        let headers = [
            ("x-ms-request-id", self.request_ids.request.as_deref()),
            (
                "x-ms-correlation-request-id",
                self.request_ids.correlation.as_deref(),
            ),
            ("retry-after", retry_after.as_deref()),
        ];
        let mut error = response_error(
            request,
            self.status,
            headers.iter().filter_map(|(n, v)| v.map(|v| (*n, v))),
            &self.body,
        );
        error.message = format!(
            "{} (x-ms-client-request-id: {})",
            error.message, self.request_ids.client
        );
        error
    }
}

/// The code of a body that could not be read as the expected JSON.
pub(crate) const MALFORMED: &str = "arm:malformed";
/// The code of a TLS failure (an untrusted certificate, a failed handshake).
pub(crate) const TLS: &str = "tls";

/// A fresh UUID-shaped id (version 4) from the operating system's random source.
pub(crate) fn client_request_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No OS randomness: still unique enough per process to correlate calls.
        let n = fastrand::u128(..).to_le_bytes();
        b = n;
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .map(str::to_owned)
}

/// `Retry-After` in seconds (the form ARM sends), or as an HTTP date (RFC 9110 §10.2.3). A date
/// is measured from the response's own `Date` header, so the server's clock is compared with
/// itself; without one, from this machine's clock. A date already past means "now" (zero).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = header(headers, "retry-after")?;
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let now = header(headers, "date")
        .and_then(|d| httpdate::parse_http_date(d.trim()).ok())
        .unwrap_or_else(std::time::SystemTime::now);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn reqwest_method(method: Method) -> reqwest::Method {
    match method {
        Method::Get => reqwest::Method::GET,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Post => reqwest::Method::POST,
        Method::Delete => reqwest::Method::DELETE,
    }
}

/// Whether an answer of `status` to `method` is sent again: 429 always (refused before it was
/// acted on), 408 and 5xx only for methods ARM defines as idempotent (not a `POST` action, which
/// may have started).
fn retried(method: Method, status: u16) -> bool {
    status == 429 || ((status == 408 || status >= 500) && method != Method::Post)
}

impl ArmManagedInstance {
    /// Sends one request, retrying as the options say; any answer that is not retried comes
    /// back, success or not.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Answer, PortError> {
        let mut attempt: u32 = 0;
        loop {
            let budget = self.read_budget.as_ref().filter(|_| method == Method::Get);
            if let Some(budget) = budget {
                let timer: &dyn Timer = self.timer.as_ref();
                let wait = budget.take(timer.now());
                if !wait.is_zero() {
                    tracing::debug!(
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        what,
                        "ARM read budget spent: waiting"
                    );
                    timer.sleep_until(timer.now().plus(wait)).await;
                }
            }
            let answer = self.send_once(method, url, body, what).await?;
            if let (Some(budget), Some(remaining)) = (budget, answer.remaining_reads) {
                budget.observe_remaining(remaining, self.timer.now());
            }
            if answer.status == 401 && attempt == 0 {
                // A token revoked or expired early: ask the credential once more.
                self.tokens.invalidate().await;
            } else if !(retried(method, answer.status) && attempt < self.options.max_retries) {
                return Ok(answer);
            }
            let wait = match answer.retry_after {
                Some(hint) => hint.min(self.options.max_retry_after),
                None => self.backoff(attempt),
            };
            tracing::debug!(
                status = answer.status,
                attempt,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                what,
                "ARM asked to retry"
            );
            attempt += 1;
            if answer.status != 401 {
                let timer: &dyn Timer = self.timer.as_ref();
                timer.sleep_until(timer.now().plus(wait)).await;
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX);
        self.options
            .initial_backoff
            .saturating_mul(factor)
            .min(self.options.max_retry_after)
    }

    async fn send_once(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Answer, PortError> {
        let token = self.tokens.token().await?;
        let client_id = client_request_id();
        let mut request = self
            .http
            .request(reqwest_method(method), url)
            .bearer_auth(token.expose())
            .header("x-ms-client-request-id", client_id.as_str())
            .header("accept", "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        // Counted on the wire until the body is read; never across a retry's wait.
        let _on_the_wire = self.on_the_wire.as_ref().map(|enter| enter());
        let mut response = request
            .send()
            .await
            .map_err(|e| transport_error(&e, what, &client_id))?;
        let headers = response.headers();
        let request_ids = RequestIds {
            client: client_id.clone(),
            request: header(headers, "x-ms-request-id"),
            correlation: header(headers, "x-ms-correlation-request-id"),
        };
        let status = response.status().as_u16();
        let mut answer = Answer {
            status,
            retry_after: retry_after(headers),
            azure_async_operation: header(headers, "azure-asyncoperation"),
            location: header(headers, "location"),
            remaining_reads: header(headers, "x-ms-ratelimit-remaining-subscription-reads")
                .and_then(|v| v.trim().parse().ok()),
            request_ids,
            body: Vec::new(),
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY as u64)
        {
            return Err(too_large(&answer, what));
        }
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if answer.body.len() + chunk.len() > MAX_BODY {
                        return Err(too_large(&answer, what));
                    }
                    answer.body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    let mut error = transport_error(&e, what, &client_id);
                    error.message = format!(
                        "{}; ARM had answered {status} ({})",
                        error.message,
                        answer.request_ids.describe()
                    );
                    return Err(error);
                }
            }
        }
        if !answer.is_success() {
            tracing::warn!(
                status,
                what,
                client_request_id = %answer.request_ids.client,
                request_id = answer.request_ids.request.as_deref().unwrap_or("-"),
                correlation_request_id = answer.request_ids.correlation.as_deref().unwrap_or("-"),
                "ARM refused the request"
            );
        }
        Ok(answer)
    }
}

fn too_large(answer: &Answer, what: &str) -> PortError {
    PortError::permanent(
        MALFORMED,
        format!(
            "ARM answered {} to {what} with a body over {} KiB; it was not read ({})",
            answer.status,
            MAX_BODY / 1024,
            answer.request_ids.describe()
        ),
    )
}

/// A request that got no (complete) answer: a timeout, a TLS failure, or another transport
/// failure. reqwest's message names the URL but never the token.
fn transport_error(error: &reqwest::Error, what: &str, client_id: &str) -> PortError {
    let detail = chain(error);
    let message = format!("{what}: {detail} (x-ms-client-request-id {client_id})");
    if is_tls(error) {
        return PortError::permanent(
            TLS,
            format!(
                "{message}; the server's certificate is not trusted or the TLS handshake failed: \
                 check the management endpoint and, for a test server, the trusted root"
            ),
        );
    }
    if error.is_timeout() {
        return PortError::transient(PortErrorKind::Timeout, message);
    }
    PortError::transient(PortErrorKind::Io, message)
}

fn chain(error: &reqwest::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

fn is_tls(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = error.source();
    while let Some(e) = source {
        if is_rustls(e) {
            return true;
        }
        source = e.source();
    }
    false
}

/// Whether `e` is a rustls error, or I/O errors wrapping one (the connector nests them, and an
/// I/O error's `source` skips the error it wraps).
fn is_rustls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = e;
    for _ in 0..8 {
        if current.is::<tokio_rustls::rustls::Error>() {
            return true;
        }
        match current
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => current = inner,
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            retry_after: Some(Duration::from_secs(7)),
            azure_async_operation: None,
            location: None,
            remaining_reads: None,
            request_ids: RequestIds {
                client: "c".into(),
                request: Some("r-1".into()),
                correlation: Some("k-1".into()),
            },
            body: body.as_bytes().to_vec(),
        }
    }

    fn request(method: Method) -> ArmRequest {
        ArmRequest {
            method,
            path: "/subscriptions/s/resourceGroups/g/providers/Microsoft.Sql/managedInstances/mi/\
                   distributedAvailabilityGroups/dag"
                .to_owned(),
            api_version: crate::arm::API_VERSION,
            body: None,
        }
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_a_date_against_the_answers_date() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert_eq!(
            retry_after(&headers(&[("retry-after", " 17 ")])),
            Some(Duration::from_secs(17))
        );
        // A date is measured from the server's own Date, whatever this machine's clock says.
        assert_eq!(
            retry_after(&headers(&[
                ("retry-after", "Wed, 21 Oct 2015 07:28:45 GMT"),
                ("date", "Wed, 21 Oct 2015 07:28:00 GMT"),
            ])),
            Some(Duration::from_secs(45))
        );
        // A date in the past: retry now.
        assert_eq!(
            retry_after(&headers(&[
                ("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"),
                ("date", "Wed, 21 Oct 2015 07:30:00 GMT"),
            ])),
            Some(Duration::ZERO)
        );
        // Without a Date, against this machine's clock: a date long past is zero.
        assert_eq!(
            retry_after(&headers(&[(
                "retry-after",
                "Wed, 21 Oct 2015 07:28:00 GMT"
            )])),
            Some(Duration::ZERO)
        );
        // Neither form: no hint (the caller's own backoff applies).
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "-3")])), None);
        assert_eq!(retry_after(&headers(&[])), None);
    }

    #[test]
    fn error_answers_keep_the_arm_code_and_the_request_ids() {
        let busy = answer(
            409,
            r#"{"error":{"code":"ManagedInstanceIsBusy","message":"Busy."}}"#,
        )
        .error(&request(Method::Put));
        assert_eq!(busy.code(), "arm:409:ManagedInstanceIsBusy");
        assert!(busy.transient && busy.is_busy());
        assert_eq!(busy.retry_after, Some(Duration::from_secs(7)));
        assert!(busy.message.contains("x-ms-request-id: r-1"), "{busy}");
        assert!(busy.message.contains("x-ms-correlation-request-id: k-1"));
        assert!(busy.message.contains("x-ms-client-request-id: c"), "{busy}");
        let other = answer(
            409,
            r#"{"error":{"code":"DistributedAvailabilityGroupSetRoleFailed"}}"#,
        )
        .error(&request(Method::Post));
        assert_eq!(
            other.code(),
            "arm:409:DistributedAvailabilityGroupSetRoleFailed"
        );
        assert!(!other.transient);
        let bare = answer(503, "<html>").error(&request(Method::Get));
        assert_eq!(bare.code(), "http:503");
        assert!(bare.transient);
    }

    #[test]
    fn client_request_ids_are_uuid_shaped_and_fresh() {
        let a = client_request_id();
        let b = client_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
    }

    #[test]
    fn only_refusals_before_acting_are_retried_for_actions() {
        assert!(retried(Method::Post, 429));
        assert!(!retried(Method::Post, 503));
        assert!(retried(Method::Put, 503));
        assert!(retried(Method::Get, 408));
        assert!(!retried(Method::Put, 409));
    }
}
