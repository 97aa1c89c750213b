//! Reachability: TCP connects with timeouts from the machine that runs milink (run it on the
//! SQL Server host) to the managed instance's endpoint (FQDN:5022) and node HadrPort
//! (11000–11999), and to the local database mirroring endpoint (milink-facts §1.6).
//!
//! This is I/O, so it lives beside the adapters, not in the pure `assess` module; the
//! results are [`NetworkProbe`] data that `assess` turns into findings. Elapsed times come
//! from the [`Clock`] the caller passes.
//!
//! A TCP connect proves the port is open, not that the link's protocol passes every firewall
//! (the docs warn about firewalls that block the "UCS" protocol).

use std::time::Duration;

use tokio::net::TcpStream;

use crate::assess::{
    HADR_PORT_RANGE, MI_ENDPOINT_PORT, NetworkOptions, NetworkProbe, NetworkTargets, ProbeKind,
    ProbeOutcome,
};
use crate::time::Clock;

/// Probes one host and port.
pub async fn probe(
    kind: ProbeKind,
    host: &str,
    port: u16,
    timeout: Duration,
    clock: &dyn Clock,
) -> NetworkProbe {
    let started = clock.now();
    let outcome = if kind == ProbeKind::MiHadrPort && !HADR_PORT_RANGE.contains(&port) {
        ProbeOutcome::PortOutOfRange
    } else {
        connect(host, port, timeout).await
    };
    NetworkProbe {
        kind,
        host: host.to_owned(),
        port,
        outcome,
        elapsed_ms: u64::try_from(clock.now().since(started).as_millis()).unwrap_or(u64::MAX),
    }
}

async fn connect(host: &str, port: u16, timeout: Duration) -> ProbeOutcome {
    let attempt = async {
        let addrs: Vec<_> = match tokio::net::lookup_host((host, port)).await {
            Ok(a) => a.collect(),
            Err(e) => return ProbeOutcome::Unresolved(e.to_string()),
        };
        if addrs.is_empty() {
            return ProbeOutcome::Unresolved("no addresses".into());
        }
        let mut last = ProbeOutcome::Failed("no address tried".into());
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(_) => return ProbeOutcome::Reachable,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    last = ProbeOutcome::Refused;
                }
                Err(e) => last = ProbeOutcome::Failed(e.to_string()),
            }
        }
        last
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(outcome) => outcome,
        Err(_) => ProbeOutcome::TimedOut,
    }
}

/// Runs every probe `targets` names, concurrently.
pub async fn check_network(
    targets: &NetworkTargets,
    options: &NetworkOptions,
    clock: &dyn Clock,
) -> Vec<NetworkProbe> {
    let t = options.timeout;
    let mi = async {
        match &targets.mi_fqdn {
            Some(h) => Some(probe(ProbeKind::MiEndpoint, h, MI_ENDPOINT_PORT, t, clock).await),
            None => None,
        }
    };
    let node = async {
        match &targets.mi_node {
            Some((h, p)) => Some(probe(ProbeKind::MiHadrPort, h, *p, t, clock).await),
            None => None,
        }
    };
    let local = async {
        match &targets.local_endpoint {
            Some((h, p)) => Some(probe(ProbeKind::LocalEndpoint, h, *p, t, clock).await),
            None => None,
        }
    };
    let (a, b, c) = tokio::join!(mi, node, local);
    [a, b, c].into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::SystemClock;
    use tokio::net::{TcpListener, TcpSocket};

    const SHORT: Duration = Duration::from_millis(300);

    #[tokio::test]
    async fn a_bound_listener_is_reachable() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let p = probe(
            ProbeKind::LocalEndpoint,
            "127.0.0.1",
            port,
            SHORT,
            &SystemClock,
        )
        .await;
        assert_eq!(p.outcome, ProbeOutcome::Reachable);
        assert_eq!((p.host.as_str(), p.port), ("127.0.0.1", port));
    }

    #[tokio::test]
    async fn a_closed_port_is_refused() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().port()
        };
        let p = probe(
            ProbeKind::MiEndpoint,
            "127.0.0.1",
            port,
            SHORT,
            &SystemClock,
        )
        .await;
        assert_eq!(p.outcome, ProbeOutcome::Refused);
    }

    #[tokio::test]
    async fn a_listener_that_never_accepts_times_out() {
        // Backlog 0 and nobody calling accept(): once the queue is full, the kernel drops
        // new SYNs, so the connect hangs until our timeout.
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = socket.local_addr().unwrap().port();
        let _listener = socket.listen(0).unwrap();
        // The first connections fill the queue (a closed connection stays queued until
        // accepted); a later one times out.
        let mut timed_out = false;
        for _ in 0..16 {
            let p = probe(
                ProbeKind::MiEndpoint,
                "127.0.0.1",
                port,
                Duration::from_millis(200),
                &SystemClock,
            )
            .await;
            if p.outcome == ProbeOutcome::TimedOut {
                assert!(p.elapsed_ms >= 150, "{p:?}");
                timed_out = true;
                break;
            }
            assert_eq!(p.outcome, ProbeOutcome::Reachable);
        }
        assert!(
            timed_out,
            "the full accept queue never made a connect time out"
        );
    }

    #[tokio::test]
    async fn hadr_port_outside_the_range_is_not_probed() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(!HADR_PORT_RANGE.contains(&port));
        let p = probe(
            ProbeKind::MiHadrPort,
            "127.0.0.1",
            port,
            SHORT,
            &SystemClock,
        )
        .await;
        assert_eq!(p.outcome, ProbeOutcome::PortOutOfRange);
        for bad in [10999u16, 12000] {
            let p = probe(ProbeKind::MiHadrPort, "127.0.0.1", bad, SHORT, &SystemClock).await;
            assert_eq!(p.outcome, ProbeOutcome::PortOutOfRange);
        }
    }

    #[tokio::test]
    async fn check_network_runs_the_named_probes() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let targets = NetworkTargets {
            mi_fqdn: None,
            mi_node: Some(("127.0.0.1".into(), 12001)),
            local_endpoint: Some(("127.0.0.1".into(), port)),
        };
        let probes =
            check_network(&targets, &NetworkOptions { timeout: SHORT }, &SystemClock).await;
        assert_eq!(probes.len(), 2);
        assert_eq!(probes[0].kind, ProbeKind::MiHadrPort);
        assert_eq!(probes[0].outcome, ProbeOutcome::PortOutOfRange);
        assert_eq!(probes[1].kind, ProbeKind::LocalEndpoint);
        assert_eq!(probes[1].outcome, ProbeOutcome::Reachable);
    }
}
