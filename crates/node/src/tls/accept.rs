//! The node's TLS acceptor: the handshakes of its gRPC port, done here
//! rather than inside tonic, so that the node sees each one.
//!
//! - **A client without a certificate is let in**, so that a load
//!   balancer's or an orchestrator's gRPC health probe can ask the
//!   standard health service. Every other service still requires a
//!   certificate from a trusted CA and a hopluu identity in it:
//!   [`crate::tls::Identity::of`] refuses a TLS request that carries none
//!   (`UNAUTHENTICATED`). A certificate that is presented is verified in
//!   the handshake as before.
//! - **Every refused handshake is logged**, once per peer address and
//!   reason in [`LOG_EVERY`] (the peer, the reason, and the presented
//!   certificate's subject and expiry where there is one), and counted by
//!   reason ([`Refusals`], the `hopluu_tls_refused_total` metric). A
//!   connection without a certificate is logged and counted the same way
//!   (`no-certificate`), since it is refused everything but health.
//!
//! Each handshake runs in its own task with [`HANDSHAKE_TIMEOUT`], so a
//! slow or silent client holds up nobody else.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::server::{ServerConfig, WebPkiClientVerifier};
use tokio_rustls::rustls::{
    AlertDescription, CertificateError, DigitallySignedStruct, DistinguishedName, Error,
    RootCertStore, SignatureScheme,
};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use super::{CertInfo, HANDSHAKE_TIMEOUT, NodeTls, pem_certificates};
use crate::NodeError;

/// A peer refused for one reason is logged again after this long (with
/// how many refusals were not logged meanwhile).
pub const LOG_EVERY: Duration = Duration::from_secs(600);

/// At most this many (peer, reason) pairs are remembered for the rate
/// limit; beyond it the memory starts afresh (a scan from many addresses
/// costs a few more log lines, never unbounded memory).
const REMEMBERED: usize = 10_000;

/// When a (peer address, reason) was last logged, and the refusals since.
type LastLogged = HashMap<(IpAddr, &'static str), (Instant, u64)>;

/// Handshakes refused (and certificate-less connections), by reason, and
/// the rate limit of their log lines.
#[derive(Debug, Default)]
pub struct Refusals {
    counts: Mutex<BTreeMap<&'static str, u64>>,
    logged: Mutex<LastLogged>,
}

/// Why a connection was refused, or let in without a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Stable code: `no-certificate`, `unknown-ca`, `expired`,
    /// `not-yet-valid`, `bad-certificate`, `node-certificate-refused`
    /// (the client does not trust this node's certificate), `not-tls`,
    /// `timeout`, `closed` (the peer hung up during the handshake),
    /// `handshake` (any other failure).
    pub reason: &'static str,
    /// What rustls or the socket said.
    pub detail: String,
}

impl Refusals {
    /// Counts `refusal` from `peer`, and logs it unless the same peer was
    /// logged for the same reason within [`LOG_EVERY`]. `presented` is the
    /// certificate the peer presented, if any. Returns whether it logged.
    pub fn record(&self, peer: SocketAddr, refusal: &Refusal, presented: Option<&[u8]>) -> bool {
        *self
            .counts
            .lock()
            .expect("refusal counts")
            .entry(refusal.reason)
            .or_default() += 1;
        let suppressed = {
            let mut logged = self.logged.lock().expect("refusal log");
            if logged.len() >= REMEMBERED {
                logged.clear();
            }
            let now = Instant::now();
            match logged.get_mut(&(peer.ip(), refusal.reason)) {
                Some((at, since)) if now.duration_since(*at) < LOG_EVERY => {
                    *since += 1;
                    return false;
                }
                Some((at, since)) => {
                    let n = *since;
                    (*at, *since) = (now, 0);
                    n
                }
                None => {
                    logged.insert((peer.ip(), refusal.reason), (now, 0));
                    0
                }
            }
        };
        let cert = presented.and_then(|der| CertInfo::from_der(der).ok());
        let subject = cert.as_ref().map(|c| c.subject.as_str()).unwrap_or("");
        let expires = cert.as_ref().map(CertInfo::expires).unwrap_or_default();
        if refusal.reason == "no-certificate" {
            tracing::info!(
                %peer,
                reason = refusal.reason,
                "a client connected without a certificate: it is served the health service only"
            );
        } else {
            tracing::warn!(
                %peer,
                reason = refusal.reason,
                detail = %refusal.detail,
                certificate_subject = subject,
                certificate_expires = %expires,
                not_logged_since = suppressed,
                "TLS handshake refused"
            );
        }
        true
    }

    /// Refusals so far, by reason.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.counts.lock().expect("refusal counts").clone()
    }
}

/// Accepts TLS connections for a node: its certificate, its trusted CAs,
/// and what it refused.
#[derive(Debug)]
pub struct Acceptor {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    verifier: Arc<dyn ClientCertVerifier>,
    provider: Arc<CryptoProvider>,
    refusals: Arc<Refusals>,
}

impl Acceptor {
    pub fn new(tls: &NodeTls) -> Result<Acceptor, NodeError> {
        let bad = |why: String| NodeError::Config(format!("tls: {why}"));
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for der in pem_certificates(&tls.ca_pem).map_err(|e| bad(e.to_string()))? {
            roots
                .add(CertificateDer::from(der))
                .map_err(|e| bad(format!("a trusted CA: {e}")))?;
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| bad(format!("the trusted CAs: {e}")))?;
        let chain = pem_certificates(&tls.cert_pem)
            .map_err(|e| bad(e.to_string()))?
            .into_iter()
            .map(CertificateDer::from)
            .collect();
        let key = PrivateKeyDer::from_pem_slice(tls.key_pem.as_bytes())
            .map_err(|e| bad(format!("the node's key: {e}")))?;
        let acceptor = Acceptor {
            chain,
            key,
            verifier,
            provider,
            refusals: Arc::default(),
        };
        // Fails now, not at the first connection, if rustls will not take it.
        acceptor.config(Arc::default())?;
        Ok(acceptor)
    }

    /// What this acceptor refused.
    pub fn refusals(&self) -> Arc<Refusals> {
        self.refusals.clone()
    }

    /// The configuration for one connection, whose verifier keeps the
    /// certificate the client presents in `presented` (for the log line,
    /// should it be refused).
    fn config(&self, presented: Arc<Presented>) -> Result<Arc<ServerConfig>, NodeError> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| NodeError::Config(format!("tls: {e}")))?
            .with_client_cert_verifier(Arc::new(Recording {
                inner: self.verifier.clone(),
                presented,
            }))
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| NodeError::Config(format!("tls.key: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// The TLS connections accepted on `listener`, for tonic's
    /// `serve_with_incoming`: each handshake in its own task; the refused
    /// ones recorded and dropped.
    pub fn incoming(
        self: Arc<Self>,
        listener: TcpListener,
    ) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    () = tx.closed() => return,
                };
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors, say: wait a little rather than spin.
                        tracing::warn!(error = %e, "could not accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let me = self.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Some(tls) = me.handshake(tcp, peer).await {
                        let _ = tx.send(Ok(tls)).await;
                    }
                });
            }
        });
        ReceiverStream::new(rx)
    }

    /// One handshake; a refusal is recorded, a connection without a
    /// certificate too (and let through).
    async fn handshake(&self, tcp: TcpStream, peer: SocketAddr) -> Option<TlsStream<TcpStream>> {
        let presented = Arc::new(Presented::default());
        let config = match self.config(presented.clone()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "no TLS configuration for a connection");
                return None;
            }
        };
        let done =
            tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::from(config).accept(tcp)).await;
        let cert = presented.0.lock().expect("presented").take();
        match done {
            Ok(Ok(tls)) => {
                if tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .is_none_or(<[_]>::is_empty)
                {
                    self.refusals.record(
                        peer,
                        &Refusal {
                            reason: "no-certificate",
                            detail: String::new(),
                        },
                        None,
                    );
                }
                Some(tls)
            }
            Ok(Err(e)) => {
                self.refusals.record(peer, &classify(&e), cert.as_deref());
                None
            }
            Err(_) => {
                let refusal = Refusal {
                    reason: "timeout",
                    detail: format!("no handshake within {HANDSHAKE_TIMEOUT:?}"),
                };
                self.refusals.record(peer, &refusal, cert.as_deref());
                None
            }
        }
    }
}

/// Why a handshake failed, from the error tokio-rustls returned.
pub fn classify(e: &std::io::Error) -> Refusal {
    let tls = e.get_ref().and_then(|i| i.downcast_ref::<Error>());
    let reason = match tls {
        Some(Error::InvalidCertificate(c)) => match c {
            CertificateError::UnknownIssuer => "unknown-ca",
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => "expired",
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "not-yet-valid"
            }
            _ => "bad-certificate",
        },
        Some(Error::AlertReceived(
            AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown,
        )) => "node-certificate-refused",
        Some(Error::InvalidMessage(_)) => "not-tls",
        Some(_) => "handshake",
        None => match e.kind() {
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe => "closed",
            std::io::ErrorKind::InvalidData => "not-tls",
            _ => "handshake",
        },
    };
    Refusal {
        reason,
        detail: crate::tls::error_chain(e),
    }
}

/// The certificate a client presented in one handshake.
#[derive(Debug, Default)]
struct Presented(Mutex<Option<Vec<u8>>>);

/// The trusted CAs' verifier, keeping what it was shown.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn ClientCertVerifier>,
    presented: Arc<Presented>,
}

impl ClientCertVerifier for Recording {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        *self.presented.0.lock().expect("presented") = Some(end_entity.to_vec());
        self.inner
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(reason: &'static str) -> Refusal {
        Refusal {
            reason,
            detail: String::new(),
        }
    }

    #[test]
    fn a_peer_is_logged_once_per_reason_and_every_refusal_counts() {
        let r = Refusals::default();
        let a: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let a_again: SocketAddr = "10.0.0.1:5001".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        assert!(r.record(a, &refusal("unknown-ca"), None));
        // The same address from another port, the same reason: counted only.
        assert!(!r.record(a_again, &refusal("unknown-ca"), None));
        // Another reason, another peer: logged.
        assert!(r.record(a, &refusal("expired"), None));
        assert!(r.record(b, &refusal("unknown-ca"), None));
        assert_eq!(
            r.counts(),
            BTreeMap::from([("expired", 1), ("unknown-ca", 3)])
        );
    }

    #[test]
    fn handshake_errors_are_told_apart() {
        let io = |e: Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        for (e, reason) in [
            (
                io(Error::InvalidCertificate(CertificateError::UnknownIssuer)),
                "unknown-ca",
            ),
            (
                io(Error::InvalidCertificate(CertificateError::Expired)),
                "expired",
            ),
            (
                io(Error::InvalidCertificate(CertificateError::NotValidYet)),
                "not-yet-valid",
            ),
            (
                io(Error::AlertReceived(AlertDescription::UnknownCA)),
                "node-certificate-refused",
            ),
            (
                std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
                "closed",
            ),
        ] {
            assert_eq!(classify(&e).reason, reason, "{e}");
        }
    }
}
