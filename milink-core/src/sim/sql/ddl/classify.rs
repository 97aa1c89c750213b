//! Which port call a batch is (see the table in [`super::super::handler`]).

use super::super::super::faults::{Call, SourceCall};
use super::super::super::world::World;
use super::ast::{Condition, Ddl, Statement};

/// Which port call a batch is, for faults and virtual latency (see the module docs of
/// [`super::super::handler`]): the first changing statement's [`SourceCall`]
/// (`sp_certificate_add_issuer` makes it root CA trust); else `CERTENCODED` is the public key
/// read and a read of the availability group views the link's state; else none.
pub fn classify(world: &World, script: &[Statement]) -> Option<Call> {
    fn walk<'s>(s: &'s [Statement], out: &mut Vec<&'s Statement>) {
        for st in s {
            out.push(st);
            match st {
                Statement::If {
                    then, otherwise, ..
                } => {
                    walk(std::slice::from_ref(then.as_ref()), out);
                    if let Some(o) = otherwise {
                        walk(std::slice::from_ref(o.as_ref()), out);
                    }
                }
                Statement::Block(b) => walk(b, out),
                Statement::TryCatch { body, handler } => {
                    walk(body, out);
                    walk(handler, out);
                }
                _ => {}
            }
        }
    }
    let mut all = Vec::new();
    walk(script, &mut all);
    let adds_issuer = all.iter().any(|s| {
        matches!(s, Statement::Exec { procedure, .. }
            if procedure.eq_ignore_ascii_case("sp_certificate_add_issuer"))
    });
    if adds_issuer {
        return Some(Call::Source(SourceCall::EnsureRootCaTrust));
    }
    let ddl_call = all.iter().find_map(|s| match s {
        Statement::Ddl(d) => ddl_call(world, d),
        _ => None,
    });
    if let Some(c) = ddl_call {
        return Some(Call::Source(c));
    }
    let queries = all.iter().filter_map(|s| match s {
        Statement::Query(q) => Some(q),
        Statement::If {
            condition: Condition::Exists { query, .. },
            ..
        } => Some(query),
        _ => None,
    });
    let (mut key, mut hadr, mut backups) = (false, false, false);
    for q in queries {
        key |= q.reads_public_key;
        hadr |= q.reads_hadr;
        backups |= q.reads_backups;
    }
    if backups {
        Some(Call::FullBackups)
    } else if key {
        Some(Call::Source(SourceCall::ExportCertificatePublicKey))
    } else if hadr {
        Some(Call::SourceLinkState)
    } else {
        None
    }
}

fn ddl_call(world: &World, d: &Ddl) -> Option<SourceCall> {
    Some(match d {
        Ddl::CreateMasterKey { .. } => SourceCall::EnsureMasterKey,
        Ddl::CreateCertificate { .. } => SourceCall::EnsureEndpointCertificate,
        Ddl::CreateCertificateFromBinary { .. } => SourceCall::ImportInstanceCertificate,
        Ddl::CreateEndpoint { .. } | Ddl::AlterEndpoint { .. } => {
            SourceCall::EnsureMirroringEndpoint
        }
        Ddl::CreateAvailabilityGroup { .. } => SourceCall::CreateAvailabilityGroup,
        Ddl::CreateDistributedAvailabilityGroup { .. } => {
            SourceCall::CreateDistributedAvailabilityGroup
        }
        Ddl::GrantCreateAnyDatabase(_) => SourceCall::GrantCreateAnyDatabase,
        Ddl::ModifyDistributed { .. } => SourceCall::SetAvailabilityMode,
        Ddl::Failover(_) => SourceCall::Failover,
        Ddl::ForceFailover(_) => SourceCall::ForceFailover,
        Ddl::SetRoleSecondary(_) => SourceCall::SetRoleSecondary,
        Ddl::DropAvailabilityGroup(name) => {
            if world.source.dags.keys().any(|d| d.as_str() == name) {
                SourceCall::DropDistributedAvailabilityGroup
            } else {
                SourceCall::DropAvailabilityGroup
            }
        }
        Ddl::DropCertificate(_) | Ddl::DropEndpoint(_) => return None,
    })
}
