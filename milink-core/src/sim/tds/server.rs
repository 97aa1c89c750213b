//! The server: TLS setup, the accept loop with its connection bound, and each connection's
//! handshake (PRELOGIN, TLS, LOGIN7) and request loop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::CertificateDer;

use crate::sim::loopback_tls::{AcceptLoop, LoopbackCert};

use super::login::{self, Login};
use super::packet::{
    DEFAULT_PACKET_SIZE, PacketError, PreloginFraming, kind, read_message, write_message,
};
use super::prelogin::{self, ENCRYPT_ON, Negotiated};
use super::request::{parse_batch, parse_rpc};
use super::tokens::{self, DONE_ATTN};
use super::types::Malformed;
use super::{SessionInfo, SqlError, TdsError, TdsHandler};

/// How the server behaves.
#[derive(Debug, Clone)]
pub struct TdsServerConfig {
    /// The server name in error messages.
    pub server_name: String,
    /// Whether a client that cannot encrypt is refused (it is, as on a server with Force
    /// Encryption). A client that asks for `Off` then gets TLS for everything.
    pub require_encryption: bool,
    /// The most connections served at once; more are closed at once with a warning.
    pub max_connections: usize,
    /// The longest PRELOGIN, TLS handshake and LOGIN7 may take before the connection is closed.
    pub handshake_timeout: Duration,
}

impl Default for TdsServerConfig {
    fn default() -> Self {
        TdsServerConfig {
            server_name: "SIMSQL".to_owned(),
            require_encryption: true,
            max_connections: 64,
            handshake_timeout: Duration::from_secs(15),
        }
    }
}

/// A TDS server on `127.0.0.1`, serving until [`TdsServer::shutdown`] (or until dropped, which
/// stops it at once).
#[derive(Debug)]
pub struct TdsServer {
    addr: SocketAddr,
    certificate: CertificateDer<'static>,
    accept: AcceptLoop,
    batches: Arc<AtomicU64>,
}

struct Shared {
    config: TdsServerConfig,
    handler: Arc<dyn TdsHandler>,
    /// SQL batches and RPC requests received.
    batches: Arc<AtomicU64>,
    /// TDS 7.4: the handshake inside PRELOGIN packets.
    tls: TlsAcceptor,
    /// TDS 8 strict: ALPN `tds/8.0`.
    strict_tls: TlsAcceptor,
}

impl TdsServer {
    /// Generates the certificate, binds `127.0.0.1:0` and starts serving.
    pub async fn start(
        config: TdsServerConfig,
        handler: Arc<dyn TdsHandler>,
    ) -> Result<TdsServer, TdsError> {
        let (certificate, tls, strict_tls) = tls_setup()?;
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let batches = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(Shared {
            config,
            handler,
            batches: Arc::clone(&batches),
            tls,
            strict_tls,
        });
        let accept = AcceptLoop::spawn("tds server", move |stopped| {
            accept_loop(listener, shared, stopped)
        });
        Ok(TdsServer {
            addr,
            certificate,
            accept,
            batches,
        })
    }

    /// The SQL batches and RPC requests received so far (malformed ones included).
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// The same tally, to read after the server is moved away.
    pub fn batch_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.batches)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its self-signed certificate (DER), for `localhost` and `127.0.0.1`: what a client trusts.
    pub fn certificate_der(&self) -> &[u8] {
        self.certificate.as_ref()
    }

    /// Stops accepting, closes every connection between requests and waits for them.
    pub async fn shutdown(mut self) {
        self.accept.shutdown().await;
    }
}

fn tls_setup() -> Result<(CertificateDer<'static>, TlsAcceptor, TlsAcceptor), TdsError> {
    let cert = LoopbackCert::generate().map_err(TdsError::Tls)?;
    // TLS 1.3 tickets would follow the handshake after the client has left PRELOGIN framing.
    let tls = cert.acceptor(Vec::new(), false).map_err(TdsError::Tls)?;
    let strict = cert
        .acceptor(vec![b"tds/8.0".to_vec()], false)
        .map_err(TdsError::Tls)?;
    Ok((cert.certificate, tls, strict))
}

/// The first session id handed to a connection. User sessions on SQL Server start at 51; the
/// simulated application's sessions sit just above that (57 onwards), so the server's own
/// connections start well clear of them and a probe's `session_id <> @@SPID` never hides the
/// application.
const FIRST_SPID: u16 = 201;

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(shared.config.max_connections));
    let mut connections = JoinSet::new();
    let mut next_spid: u16 = FIRST_SPID;
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            Some(ended) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = ended {
                    tracing::warn!(error = %e, "tds server: a connection task failed");
                }
            }
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "tds server: accept failed");
                        continue;
                    }
                };
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "tds server: too many connections, closing the new one");
                    continue;
                };
                let spid = next_spid;
                next_spid = next_spid.checked_add(1).unwrap_or(FIRST_SPID);
                let shared = shared.clone();
                let stopped = stopped.clone();
                connections.spawn(async move {
                    let _permit = permit;
                    if let Err(e) = serve(tcp, spid, &shared, stopped).await {
                        tracing::warn!(%peer, spid, error = %e, "tds server: connection closed");
                    }
                });
            }
        }
    }
    while connections.join_next().await.is_some() {}
}

/// Why a connection was closed.
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Packet(#[from] PacketError),
    #[error("malformed message: {0}")]
    Malformed(#[from] Malformed),
    #[error("the handshake did not finish in time")]
    Timeout,
    #[error("the client cannot encrypt and the server requires it")]
    EncryptionRefused,
    #[error("expected packet type 0x{expected:02X}, got 0x{got:02X}")]
    Unexpected { expected: u8, got: u8 },
}

/// The transport after the handshake: TCP, TLS over TCP, or TCP again after a login-only TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

struct Session {
    io: Box<dyn Stream>,
    info: SessionInfo,
    packet_size: usize,
}

/// The first byte of a TLS ClientHello record: a TDS 8 strict client.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

async fn serve(
    tcp: TcpStream,
    spid: u16,
    shared: &Shared,
    mut stopped: watch::Receiver<bool>,
) -> Result<(), ConnError> {
    tcp.set_nodelay(true)?;
    let handshake = tokio::time::timeout(
        shared.config.handshake_timeout,
        handshake(tcp, spid, shared),
    );
    let session = tokio::select! {
        session = handshake => session.map_err(|_| ConnError::Timeout)??,
        _ = stopped.changed() => return Ok(()),
    };
    let Some(Session {
        mut io,
        info,
        packet_size,
    }) = session
    else {
        return Ok(());
    };
    let server_name = &shared.config.server_name;
    loop {
        let message = tokio::select! {
            message = read_message(&mut io) => message?,
            _ = stopped.changed() => return Ok(()),
        };
        let Some(message) = message else {
            return Ok(()); // the client left
        };
        let (answer, close) = match message.kind {
            kind::SQL_BATCH | kind::RPC => {
                shared.batches.fetch_add(1, Ordering::Relaxed);
                let rpc = message.kind == kind::RPC;
                let parsed = if rpc {
                    parse_rpc(&message.payload)
                } else {
                    parse_batch(&message.payload)
                };
                match parsed {
                    Ok(request) => {
                        let sql = &request.sql;
                        let outcomes = shared.handler.batch(&info, sql, &request.params).await;
                        tokens::response(&outcomes, rpc, server_name)
                    }
                    Err(why) => {
                        tracing::warn!(spid, error = %why, "tds server: request refused");
                        let msg = format!(
                            "The incoming tabular data stream (TDS) protocol stream is incorrect: {why}."
                        );
                        let error = super::Outcome::Error(SqlError::new(8016, 16, msg));
                        tokens::response(&[error], rpc, server_name)
                    }
                }
            }
            kind::ATTENTION => {
                let mut out = Vec::new();
                tokens::done(&mut out, 0xFD, DONE_ATTN, 0, 0);
                (out, false)
            }
            got => {
                return Err(ConnError::Unexpected {
                    expected: kind::SQL_BATCH,
                    got,
                });
            }
        };
        if !answer.is_empty() {
            write_message(&mut io, kind::TABULAR_RESULT, spid, &answer, packet_size).await?;
        }
        if close {
            return Ok(());
        }
    }
}

/// PRELOGIN, TLS and LOGIN7. `None` when the login was refused (and answered).
async fn handshake(
    tcp: TcpStream,
    spid: u16,
    shared: &Shared,
) -> Result<Option<Session>, ConnError> {
    let mut first = [0u8; 1];
    if tcp.peek(&mut first).await? == 0 {
        return Ok(None);
    }
    let strict = first[0] == TLS_HANDSHAKE_RECORD;
    let mut framing = PreloginFraming::new(tcp);
    let (mut io, login): (Box<dyn Stream>, Login) = if strict {
        let mut tls = shared.strict_tls.accept(framing).await?;
        prelogin_exchange(&mut tls, spid, true, shared).await?;
        let login = read_login(&mut tls).await?;
        (Box::new(tls), login)
    } else {
        match prelogin_exchange(&mut framing, spid, false, shared).await? {
            Negotiated::Refuse => return Err(ConnError::EncryptionRefused),
            Negotiated::Plain => {
                let login = read_login(&mut framing).await?;
                (Box::new(framing), login)
            }
            negotiated @ (Negotiated::Full | Negotiated::LoginOnly) => {
                framing.begin_handshake();
                let mut tls = shared.tls.accept(framing).await?;
                tls.get_mut().0.handshake_complete();
                let login = read_login(&mut tls).await?;
                if negotiated == Negotiated::LoginOnly {
                    (Box::new(tls.into_inner().0), login)
                } else {
                    (Box::new(tls), login)
                }
            }
        }
    };
    let server_name = &shared.config.server_name;
    if let Err(refusal) = shared.handler.login(&login).await {
        tracing::warn!(spid, user = %login.user, number = refusal.number, "tds server: login refused");
        let answer = tokens::login_refused(&refusal, server_name);
        write_message(
            &mut io,
            kind::TABULAR_RESULT,
            spid,
            &answer,
            DEFAULT_PACKET_SIZE,
        )
        .await?;
        return Ok(None);
    }
    let packet_size = match login.packet_size {
        0 => DEFAULT_PACKET_SIZE,
        n => (n as usize).clamp(512, 32_767),
    };
    let database = login
        .database
        .clone()
        .unwrap_or_else(|| "master".to_owned());
    let answer = tokens::login_ack(&database, packet_size);
    write_message(&mut io, kind::TABULAR_RESULT, spid, &answer, packet_size).await?;
    Ok(Some(Session {
        io,
        info: SessionInfo {
            spid,
            user: login.user,
            database,
            strict,
        },
        packet_size,
    }))
}

async fn prelogin_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    spid: u16,
    strict: bool,
    shared: &Shared,
) -> Result<Negotiated, ConnError> {
    let message = expect(io, kind::PRELOGIN).await?;
    let client = prelogin::parse(&message)?;
    let (answer, negotiated) = if strict {
        (ENCRYPT_ON, Negotiated::Full) // TLS is already up
    } else {
        prelogin::negotiate(client.encryption, shared.config.require_encryption)
    };
    let response = prelogin::response(answer, client.fed_auth_required);
    write_message(
        io,
        kind::TABULAR_RESULT,
        spid,
        &response,
        DEFAULT_PACKET_SIZE,
    )
    .await?;
    Ok(negotiated)
}

async fn read_login<S: AsyncRead + Unpin>(io: &mut S) -> Result<Login, ConnError> {
    let message = expect(io, kind::LOGIN7).await?;
    Ok(login::parse(&message)?)
}

async fn expect<S: AsyncRead + Unpin>(io: &mut S, expected: u8) -> Result<Vec<u8>, ConnError> {
    match read_message(io).await? {
        Some(message) if message.kind == expected => Ok(message.payload),
        Some(message) => Err(ConnError::Unexpected {
            expected,
            got: message.kind,
        }),
        None => Err(PacketError::Malformed("connection closed during the handshake".into()).into()),
    }
}
