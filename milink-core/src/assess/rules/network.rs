//! Instance checks of the network between SQL Server and the managed instance.

use crate::assess::network::{ProbeKind, ProbeOutcome};

use super::{
    Check, Context, Evidence, F16, Fix, NO_NETWORK, Outcome, Rule, ScopeKind, Severity, list,
};

/// This group's part of the catalogue, in catalogue order.
pub(super) const RULES: &[Rule] = &[
    NETWORK_MI_ENDPOINT,
    NETWORK_MI_HADR_PORT,
    LOCAL_ENDPOINT_LISTENING,
    NETWORK_MI_TO_SQL_SERVER,
    SUBNET_OVERLAP,
];

fn network_rule(ctx: &Context<'_>, kind: ProbeKind, fix: &str) -> Outcome {
    let probes: Vec<_> = ctx
        .options
        .network
        .iter()
        .filter(|p| p.kind == kind)
        .collect();
    if probes.is_empty() {
        return Outcome::NotEvaluated(NO_NETWORK.into());
    }
    let failed: Vec<_> = probes
        .iter()
        .filter(|p| !matches!(p.outcome, ProbeOutcome::Reachable))
        .collect();
    if failed.is_empty() {
        return Outcome::Pass;
    }
    let mut ev = Evidence::new(list(
        failed
            .iter()
            .map(|p| format!("{}:{} {}", p.host, p.port, p.outcome)),
    ));
    for p in &failed {
        ev = ev.with(&format!("{}:{}", p.host, p.port), &p.outcome);
    }
    Outcome::Fail(ev, Fix::action(fix))
}

const NETWORK_MI_ENDPOINT: Rule = rule!(
    "Link.NetworkMiEndpoint",
    Blocker,
    Instance,
    "SQL Server reaches the managed instance on 5022",
    F16,
    "TCP connect to the managed instance FQDN:5022",
    Instance(network_mi_endpoint)
);
fn network_mi_endpoint(ctx: &Context<'_>) -> Outcome {
    network_rule(
        ctx,
        ProbeKind::MiEndpoint,
        "Allow TCP 5022 outbound from SQL Server to the managed instance subnet and inbound on \
         the managed instance subnet's NSG from the SQL Server IP; the link only uses the \
         VNet-local endpoint (VPN, ExpressRoute or peering).",
    )
}

const NETWORK_MI_HADR_PORT: Rule = rule!(
    "Link.NetworkMiHadrPort",
    Blocker,
    Instance,
    "SQL Server reaches the managed instance's HadrPort",
    F16,
    "TCP connect to node:HadrPort (11000-11999)",
    Instance(network_mi_hadr_port)
);
fn network_mi_hadr_port(ctx: &Context<'_>) -> Outcome {
    network_rule(
        ctx,
        ProbeKind::MiHadrPort,
        "Allow TCP 11000-11999 outbound from SQL Server to the managed instance subnet and \
         inbound on its NSG; the HadrPort comes from sys.dm_hadr_fabric_config_parameters on \
         the managed instance and can change after a failover.",
    )
}

const LOCAL_ENDPOINT_LISTENING: Rule = rule!(
    "Link.LocalEndpointListening",
    Blocker,
    Instance,
    "The mirroring endpoint listens",
    F16,
    "TCP connect to the SQL Server endpoint port",
    Instance(local_endpoint_listening)
);
fn local_endpoint_listening(ctx: &Context<'_>) -> Outcome {
    network_rule(
        ctx,
        ProbeKind::LocalEndpoint,
        "Start the database mirroring endpoint and allow its port (5022) inbound from the \
         managed instance subnet in the host firewall.",
    )
}

const NETWORK_MI_TO_SQL_SERVER: Rule = rule!(
    "Link.NetworkMiToSqlServer",
    Blocker,
    Instance,
    "The managed instance reaches SQL Server's endpoint",
    F16,
    "a MiToSqlServer probe result run from the managed instance's side and passed in; milink itself only checks that the endpoint listens (Link.LocalEndpointListening)",
    Instance(network_mi_to_sql_server)
);
/// The managed instance → SQL Server direction (milink-facts §1.6: the instance's subnet
/// needs outbound 5022 to SQL Server, SQL Server's host and firewalls inbound 5022 from the
/// subnet). A connection can only be opened from the instance's side, which milink does not
/// run on; without a result this says so and how to get one, instead of passing.
fn network_mi_to_sql_server(ctx: &Context<'_>) -> Outcome {
    let probes = ctx
        .options
        .network
        .iter()
        .any(|p| p.kind == ProbeKind::MiToSqlServer);
    if !probes {
        return Outcome::NotEvaluated(
            "not verified from the managed instance's side: milink runs beside SQL Server and \
             only checked that the endpoint listens there. To verify, run the connection test \
             from the managed instance (Microsoft's NetHelper SQL Agent job running `tnc \
             <SQL Server IP> -port 5022` on the instance, SSMS's Test Connection, or Arc's \
             MiToBoxNetworkConnectivity assessment) and pass the result as a MiToSqlServer \
             network probe"
                .into(),
        );
    }
    network_rule(
        ctx,
        ProbeKind::MiToSqlServer,
        "Allow TCP 5022 (SQL Server's endpoint port) outbound on the managed instance subnet's \
         NSG to SQL Server's IP, and inbound from the managed instance subnet on SQL Server's \
         host firewall and every firewall between; allow ICMP and SQL Server's UCS protocol, \
         which a TCP test does not exercise.",
    )
}

/// An IPv4 network (`a.b.c.d/n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Net {
    /// The address, host bits cleared.
    pub network: u32,
    /// The prefix length, 0–32.
    pub prefix: u8,
}

impl Ipv4Net {
    /// Parses `a.b.c.d/n` or a single address (`/32`); `None` otherwise (IPv6 included).
    pub fn parse(text: &str) -> Option<Ipv4Net> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, p.trim().parse::<u8>().ok().filter(|p| *p <= 32)?),
            None => (text.trim(), 32),
        };
        let ip: std::net::Ipv4Addr = addr.trim().parse().ok()?;
        let net = Ipv4Net {
            network: u32::from(ip),
            prefix,
        };
        Some(Ipv4Net {
            network: net.network & net.mask(),
            prefix,
        })
    }

    fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// Whether the two networks share an address.
    pub fn overlaps(self, other: Ipv4Net) -> bool {
        let shorter = if self.prefix <= other.prefix {
            self
        } else {
            other
        };
        (self.network & shorter.mask()) == (other.network & shorter.mask())
    }
}

const SUBNET_OVERLAP: Rule = rule!(
    "Link.SubnetOverlap",
    Blocker,
    Instance,
    "SQL Server's network does not overlap the managed instance's subnet",
    F16,
    "the instance's subnet prefixes (ARM, through subnetId) against SQL Server's address on milink's connection and the networks given in AssessOptions::sql_server_networks (IPv4)",
    Instance(subnet_overlap)
);
/// Subnet ranges must not overlap between SQL Server's network and the managed instance's
/// (milink-facts §1.6; `managed-instance-link-preparation.md`). SQL Server's own address can
/// be read (`local_net_address`); its network's range can't, so the caller may give it.
fn subnet_overlap(ctx: &Context<'_>) -> Outcome {
    let Some(t) = ctx.target else {
        return Outcome::NotEvaluated(super::NO_TARGET.into());
    };
    let Some(prefixes) = &t.subnet_prefixes else {
        return Outcome::NotEvaluated("the managed instance's subnet was not read".into());
    };
    let mi: Vec<(String, Ipv4Net)> = prefixes
        .iter()
        .filter_map(|p| Ipv4Net::parse(p).map(|n| (p.clone(), n)))
        .collect();
    let mut sql: Vec<(String, Ipv4Net)> = ctx
        .options
        .sql_server_networks
        .iter()
        .filter_map(|p| Ipv4Net::parse(p).map(|n| (p.clone(), n)))
        .collect();
    if let Some(addr) = &ctx.instance.local_address {
        match Ipv4Net::parse(addr) {
            // A loopback address says nothing of SQL Server's network.
            Some(n) if n.network >> 24 != 127 => sql.push((addr.clone(), n)),
            _ => {}
        }
    }
    if sql.is_empty() || mi.is_empty() {
        return Outcome::NotEvaluated(
            "SQL Server's network is unknown (no IPv4 address on the connection and no \
             AssessOptions::sql_server_networks)"
                .into(),
        );
    }
    let overlaps: Vec<String> = sql
        .iter()
        .flat_map(|(s, sn)| {
            mi.iter()
                .filter(move |(_, mn)| sn.overlaps(*mn))
                .map(move |(m, _)| format!("{s} overlaps {m}"))
        })
        .collect();
    if overlaps.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(list(&overlaps))
            .with("managed instance subnet", list(prefixes))
            .with("SQL Server", list(sql.iter().map(|(s, _)| s.as_str()))),
        Fix::action(
            "Use address ranges that don't overlap: the managed instance's subnet and SQL \
             Server's network must be routable to each other over VPN, ExpressRoute or VNet \
             peering, which overlapping ranges prevent.",
        ),
    )
}
