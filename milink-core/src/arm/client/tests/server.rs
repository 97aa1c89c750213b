//! A scripted HTTPS server for the adapter's tests: HTTP/1.1 (hyper) over tokio-rustls with a
//! certificate rcgen makes at start, answering each request with the next scripted reply and
//! recording what it was sent.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) query: String,
    pub(super) authorization: Option<String>,
    pub(super) client_request_id: Option<String>,
    pub(super) user_agent: Option<String>,
    pub(super) body: String,
}

/// One scripted answer. `{base}` in a header value becomes the server's base URL.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    pub(super) fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    pub(super) fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply::new(status).body(body.to_string().into_bytes())
    }
    pub(super) fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    pub(super) fn body(mut self, body: Vec<u8>) -> Reply {
        self.body = body;
        self
    }
}

#[derive(Default)]
struct State {
    script: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Seen>>,
    base: Mutex<String>,
}

/// The running server; stops when dropped.
pub(super) struct Server {
    pub(super) base: String,
    pub(super) certificate: Vec<u8>,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Starts on 127.0.0.1 with a fresh certificate, answering `script` in order (500 once it
    /// runs out).
    pub(super) async fn start(script: Vec<Reply>) -> Server {
        Server::spawn(script, None).await
    }

    /// Starts a server that answers every request with `raw` bytes as they are (e.g. a body
    /// shorter than its `Content-Length`), then closes the connection; or, with `raw` empty,
    /// completes the TLS handshake and never answers.
    pub(super) async fn start_raw(raw: &'static [u8]) -> Server {
        Server::spawn(Vec::new(), Some(raw)).await
    }

    async fn spawn(script: Vec<Reply>, raw: Option<&'static [u8]>) -> Server {
        let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let certificate = generated.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            generated.signing_key.serialize_der(),
        ));
        let config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::clone(&certificate)], key)
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        let state = Arc::new(State::default());
        *state.script.lock().unwrap() = script.into();
        *state.base.lock().unwrap() = base.clone();
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    if let Some(raw) = raw {
                        answer_raw(&mut tls, raw).await;
                        return;
                    }
                    let service = service_fn(move |req| answer(Arc::clone(&state), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Server {
            base,
            certificate: certificate.to_vec(),
            state,
            task,
        }
    }

    /// What the server was sent, in order.
    pub(super) fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Adds replies to the end of the script.
    pub(super) fn then(&self, replies: Vec<Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }
}

async fn answer_raw<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, raw: &[u8]) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    if raw.is_empty() {
        std::future::pending::<()>().await;
    }
    let _ = stream.write_all(raw).await;
    let _ = stream.shutdown().await;
}

async fn answer(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut seen = Seen {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        query: req.uri().query().unwrap_or_default().to_owned(),
        authorization: header("authorization"),
        client_request_id: header("x-ms-client-request-id"),
        user_agent: header("user-agent"),
        body: String::new(),
    };
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    seen.body = String::from_utf8_lossy(&body).into_owned();
    state.seen.lock().unwrap().push(seen);
    let reply = state
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| Reply::new(500).body(b"unscripted".to_vec()));
    let base = state.base.lock().unwrap().clone();
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(name.as_str(), value.replace("{base}", &base));
    }
    Ok(response.body(Full::new(Bytes::from(reply.body))).unwrap())
}
