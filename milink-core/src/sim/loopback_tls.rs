//! The loopback servers' TLS (the TDS face and the ARM face): a self-signed certificate for
//! `localhost` and `127.0.0.1` generated at start (rcgen), served with rustls on aws-lc-rs.
//! Clients trust the certificate explicitly; nothing turns verification off.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A generated certificate and its key.
pub(crate) struct LoopbackCert {
    /// The certificate (DER): what a client trusts.
    pub(crate) certificate: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

impl LoopbackCert {
    /// A fresh self-signed certificate for `localhost` and `127.0.0.1`.
    pub(crate) fn generate() -> Result<Self, String> {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let generated = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
        Ok(LoopbackCert {
            certificate: generated.cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                generated.signing_key.serialize_der(),
            )),
        })
    }

    /// An acceptor serving it with the ALPN protocols `alpn`; `tls13_tickets` says whether TLS
    /// 1.3 session tickets follow the handshake.
    pub(crate) fn acceptor(
        &self,
        alpn: Vec<Vec<u8>>,
        tls13_tickets: bool,
    ) -> Result<TlsAcceptor, String> {
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_no_client_auth()
                .with_single_cert(vec![self.certificate.clone()], self.key.clone_key())
                .map_err(|e| e.to_string())?;
        if !tls13_tickets {
            config.send_tls13_tickets = 0;
        }
        config.alpn_protocols = alpn;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// A loopback server's accept loop: told to stop through a watch channel (`shutdown`, which
/// waits for it), aborted with its connection tasks if dropped without.
#[derive(Debug)]
pub(crate) struct AcceptLoop {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    name: &'static str,
}

impl AcceptLoop {
    /// Spawns `accept(stopped)`, which must return once `stopped` changes.
    pub(crate) fn spawn<F, Fut>(name: &'static str, accept: F) -> AcceptLoop
    where
        F: FnOnce(watch::Receiver<bool>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = watch::channel(false);
        AcceptLoop {
            stop,
            task: Some(tokio::spawn(accept(stopped))),
            name,
        }
    }

    /// Stops accepting and waits for the loop (and what it lets finish) to end.
    pub(crate) async fn shutdown(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            tracing::warn!(error = %e, server = self.name, "the accept loop ended abnormally");
        }
    }
}

impl Drop for AcceptLoop {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort(); // its connection tasks go with it
        }
    }
}
