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
