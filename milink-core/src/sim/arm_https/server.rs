//! The server: TLS setup, the accept loop with its connection bound, HTTP/1.1 per connection
//! (hyper), bearer-token authentication, and the hand-off of each request to the handler.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::CertificateDer;

use crate::sim::loopback_tls::{AcceptLoop, LoopbackCert};

use super::counts::{RequestCounter, RequestCounts};
use super::handle::{self, Context};
use super::resources::{Reply, envelope};
use super::{ArmServerConfig, ArmServerError, TokenPolicy};
use crate::sim::Sim;

/// The longest a TLS handshake may take before the connection is closed.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// The simulated managed instance's REST API over HTTPS on `127.0.0.1`, serving until
/// [`ArmHttpsServer::shutdown`] (or until dropped, which stops it at once).
#[derive(Debug)]
pub struct ArmHttpsServer {
    addr: SocketAddr,
    base_url: String,
    certificate: CertificateDer<'static>,
    accept: AcceptLoop,
    counts: RequestCounter,
}

struct Shared {
    config: ArmServerConfig,
    /// Every request received, by method and route kind.
    counts: RequestCounter,
    /// Numbers the `x-ms-request-id` of each answer (the world's generator is not used, so
    /// that serving over HTTPS draws nothing the in-process instance does not).
    requests: std::sync::atomic::AtomicU64,
    sim: Sim,
    base_url: String,
    tls: TlsAcceptor,
    /// The subscription's read bucket: reads left (fractional while refilling) and when.
    reads: std::sync::Mutex<(f64, Option<crate::time::Timestamp>)>,
}

/// The connection is closed without an answer.
#[derive(Debug)]
struct CloseConnection;

impl std::fmt::Display for CloseConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed without an answer (simulated fault)")
    }
}

impl std::error::Error for CloseConnection {}

impl ArmHttpsServer {
    /// Generates the certificate, binds `127.0.0.1:0` and starts serving `sim`'s instance.
    pub async fn start(
        config: ArmServerConfig,
        sim: Sim,
    ) -> Result<ArmHttpsServer, ArmServerError> {
        let (certificate, tls) = tls_setup()?;
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let base_url = format!("https://{addr}");
        let counts = RequestCounter::default();
        let shared = Arc::new(Shared {
            counts: counts.clone(),
            requests: std::sync::atomic::AtomicU64::new(0),
            sim,
            base_url: base_url.clone(),
            tls,
            reads: std::sync::Mutex::new((f64::from(config.reads_at_start), None)),
            config,
        });
        let accept = AcceptLoop::spawn("arm https server", move |stopped| {
            accept_loop(listener, shared, stopped)
        });
        Ok(ArmHttpsServer {
            addr,
            base_url,
            certificate,
            accept,
            counts,
        })
    }

    /// The requests received so far, by method and route kind (`PUT link`,
    /// `GET operation (AzureAsyncOperation)`, …), refused ones included.
    pub fn requests(&self) -> RequestCounts {
        self.counts.snapshot()
    }

    /// A handle on the same tally, to read it after the server is moved away.
    pub fn request_counter(&self) -> RequestCounter {
        self.counts.clone()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:{port}`: the management endpoint a client uses instead of
    /// [`MANAGEMENT_ENDPOINT`](crate::arm::MANAGEMENT_ENDPOINT).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Its self-signed certificate (DER), for `localhost` and `127.0.0.1`: what a client trusts.
    pub fn certificate_der(&self) -> &[u8] {
        self.certificate.as_ref()
    }

    /// Stops accepting, lets every connection finish its request in flight, and waits for them.
    pub async fn shutdown(mut self) {
        self.accept.shutdown().await;
    }
}

fn tls_setup() -> Result<(CertificateDer<'static>, TlsAcceptor), ArmServerError> {
    let cert = LoopbackCert::generate().map_err(ArmServerError::Tls)?;
    let acceptor = cert
        .acceptor(vec![b"http/1.1".to_vec()], true)
        .map_err(ArmServerError::Tls)?;
    Ok((cert.certificate, acceptor))
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(shared.config.max_connections));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            Some(ended) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = ended {
                    tracing::warn!(error = %e, "arm https server: a connection task failed");
                }
            }
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "arm https server: accept failed");
                        continue;
                    }
                };
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "arm https server: too many connections, closing the new one");
                    continue;
                };
                let shared = shared.clone();
                let stopped = stopped.clone();
                connections.spawn(async move {
                    let _permit = permit;
                    if let Err(e) = serve(tcp, shared, stopped).await {
                        tracing::debug!(%peer, error = %e, "arm https server: connection closed");
                    }
                });
            }
        }
    }
    while connections.join_next().await.is_some() {}
}

async fn serve(
    tcp: TcpStream,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, shared.tls.accept(tcp)).await??;
    let service = service_fn(move |req: Request<Incoming>| {
        let shared = shared.clone();
        async move { respond(&shared, req).await }
    });
    let conn = http1::Builder::new().serve_connection(TokioIo::new(tls), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => r?,
        _ = stopped.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await?;
        }
    }
    Ok(())
}

fn to_response(shared: &Shared, reply: Reply) -> Result<Response<Full<Bytes>>, CloseConnection> {
    let Reply::Answer {
        status,
        headers,
        body,
    } = reply
    else {
        return Err(CloseConnection);
    };
    let n = shared
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let request_id = format!("00000000-0000-4000-8000-{:012x}", n & 0xffff_ffff_ffff);
    let mut builder = Response::builder()
        .status(status)
        .header("x-ms-request-id", request_id);
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let bytes = match body {
        Some(v) => {
            builder = builder.header("Content-Type", "application/json; charset=utf-8");
            serde_json::to_vec(&v).unwrap_or_default()
        }
        None => Vec::new(),
    };
    match builder.body(Full::new(Bytes::from(bytes))) {
        Ok(response) => Ok(response),
        Err(e) => {
            tracing::warn!(error = %e, "arm https server: could not build a response");
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            Ok(r)
        }
    }
}

/// Takes one read from the subscription's bucket (refilled to the world's now first) and
/// returns what is left, as ARM reports it.
fn take_read(shared: &Shared) -> u32 {
    let now = shared.sim.now();
    let mut bucket = shared
        .reads
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(at) = bucket.1 {
        let earned = now.since(at).as_secs_f64() * f64::from(super::READ_BUCKET_REFILL_PER_SECOND);
        bucket.0 = (bucket.0 + earned).min(f64::from(super::READ_BUCKET_CAPACITY));
    }
    bucket.1 = Some(now);
    bucket.0 = (bucket.0 - 1.0).max(0.0);
    bucket.0 as u32
}

async fn respond(
    shared: &Shared,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, CloseConnection> {
    shared.counts.add(req.method().as_str(), req.uri().path());
    let remaining_reads = (req.method() == hyper::Method::GET).then(|| take_read(shared));
    let response = respond_to(shared, req).await;
    match (response, remaining_reads) {
        (Ok(mut response), Some(left)) => {
            response.headers_mut().insert(
                "x-ms-ratelimit-remaining-subscription-reads",
                hyper::header::HeaderValue::from(left),
            );
            Ok(response)
        }
        (response, _) => response,
    }
}

async fn respond_to(
    shared: &Shared,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, CloseConnection> {
    if let Err(reply) = authenticate(&shared.config.tokens, req.headers()) {
        return to_response(shared, reply);
    }
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let body = match Limited::new(req.into_body(), shared.config.max_body_bytes)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return to_response(
                shared,
                Reply::error(
                    413,
                    "RequestEntityTooLarge",
                    "The request body is larger than the server accepts.",
                ),
            );
        }
    };
    // Synchronous: the world is locked inside, for this request only.
    let reply = handle::handle(
        &Context {
            sim: &shared.sim,
            base_url: &shared.base_url,
            body_check: shared.config.body_check.as_ref(),
        },
        &handle::Request {
            method: &method,
            path: &path,
            query: query.as_deref(),
            body: &body,
        },
    );
    to_response(shared, reply)
}

fn unauthorized(code: &str, message: &str) -> Reply {
    Reply::json(401, envelope(code, message)).with_header(
        "WWW-Authenticate",
        format!(
            "Bearer authorization_uri=\"https://login.microsoftonline.com/common\", \
             error=\"invalid_token\", error_description=\"{message}\""
        ),
    )
}

/// Checks `Authorization: Bearer <token>` against the policy. Never logs or echoes the token.
fn authenticate(policy: &TokenPolicy, headers: &hyper::HeaderMap) -> Result<(), Reply> {
    let Some(value) = headers.get(hyper::header::AUTHORIZATION) else {
        return Err(unauthorized(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("Bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(unauthorized(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is not a bearer token.",
        ));
    };
    match policy {
        TokenPolicy::SharedSecret(secret) => {
            if constant_time_eq(secret.expose().as_bytes(), token.as_bytes()) {
                Ok(())
            } else {
                Err(unauthorized(
                    "InvalidAuthenticationToken",
                    "The access token is invalid.",
                ))
            }
        }
        TokenPolicy::AnyManagementToken => match jwt_audience(token) {
            None => Ok(()),
            Some(aud)
                if MANAGEMENT_AUDIENCES
                    .iter()
                    .any(|a| aud.iter().any(|x| x == a)) =>
            {
                Ok(())
            }
            Some(_) => Err(unauthorized(
                "InvalidAuthenticationTokenAudience",
                "The access token has been obtained for the wrong audience or resource.",
            )),
        },
    }
}

const MANAGEMENT_AUDIENCES: [&str; 3] = [
    "https://management.azure.com/",
    "https://management.azure.com",
    "https://management.core.windows.net/",
];

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `aud` claim(s) of a JWT; `None` when the token is not a JWT (opaque).
fn jwt_audience(token: &str) -> Option<Vec<String>> {
    let mut parts = token.split('.');
    let (_, payload, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else {
        return None;
    };
    let claims: Value = serde_json::from_slice(&base64url_decode(payload)?).ok()?;
    Some(match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    })
}

fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(aud: &str) -> String {
        let enc = |b: &[u8]| {
            const A: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut out = String::new();
            for chunk in b.chunks(3) {
                let n = chunk.iter().fold(0u32, |acc, x| (acc << 8) | u32::from(*x))
                    << (8 * (3 - chunk.len()));
                for i in 0..=chunk.len() {
                    out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
                }
            }
            out
        };
        format!(
            "{}.{}.sig",
            enc(br#"{"alg":"none"}"#),
            enc(format!(r#"{{"aud":"{aud}"}}"#).as_bytes())
        )
    }

    fn headers(value: &str) -> hyper::HeaderMap {
        let mut h = hyper::HeaderMap::new();
        h.insert(hyper::header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn tokens_are_checked_by_policy_and_audience() {
        let any = TokenPolicy::AnyManagementToken;
        assert!(authenticate(&any, &headers("Bearer opaque")).is_ok());
        let good = jwt("https://management.azure.com/");
        assert!(authenticate(&any, &headers(&format!("Bearer {good}"))).is_ok());
        let vault = jwt("https://vault.azure.net");
        let Err(Reply::Answer { status, body, .. }) =
            authenticate(&any, &headers(&format!("Bearer {vault}")))
        else {
            panic!("a vault token passed");
        };
        assert_eq!(status, 401);
        assert_eq!(
            body.unwrap()["error"]["code"],
            "InvalidAuthenticationTokenAudience"
        );
        assert!(authenticate(&any, &headers("Basic abc")).is_err());
        assert!(authenticate(&any, &hyper::HeaderMap::new()).is_err());
        let shared = TokenPolicy::SharedSecret("s3cret".into());
        assert!(authenticate(&shared, &headers("bearer s3cret")).is_ok());
        assert!(authenticate(&shared, &headers("Bearer other")).is_err());
        assert_eq!(format!("{shared:?}"), "SharedSecret(***)");
    }
}
