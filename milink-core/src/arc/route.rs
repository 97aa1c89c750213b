//! The lifecycle's Arc route, rendered: each [`ArcLinkOp`] the machine issues becomes the
//! [`ArcOp`] for the link's spec, so the plan, the session and the tests render it one way.

use super::ops::{
    AgCreate, AgReplica, ArcSeedingMode, DagCreate, DagMember, DagMemberRef, MiLinkCreate,
};
use super::{ArcFailover, ArcOp};
use crate::lifecycle::{ArcLinkOp, FailoverKind, LinkSpec, SeedingMode};
use crate::ports::{PortError, PortErrorKind};

/// The code of a forced failover refused for want of an acknowledgement naming the link.
pub const ACKNOWLEDGEMENT_REQUIRED: &str = "arc:AcknowledgementRequired";

/// `createManagedInstanceLink`'s body for the link's spec: SQL Server's availability group with
/// its one replica on the spec's endpoint and certificate, the distributed availability group
/// from it to the managed instance, and the instance's availability group name.
pub fn create_link(spec: &LinkSpec) -> MiLinkCreate {
    let seeding = match spec.seeding_mode {
        SeedingMode::Automatic => ArcSeedingMode::Automatic,
        SeedingMode::Manual => ArcSeedingMode::Manual,
    };
    MiLinkCreate {
        availability_group: AgCreate {
            name: spec.source.ag.clone(),
            replicas: vec![AgReplica {
                server_instance: Some(spec.source.server.clone()),
                endpoint_name: Some(spec.source.endpoint_name.clone()),
                endpoint_url: Some(spec.source.endpoint_url()),
                certificate_name: Some(spec.source.certificate.clone()),
                seeding_mode: Some(seeding),
                ..AgReplica::default()
            }],
            databases: spec.databases.clone(),
            cluster_type: None,
        },
        distributed_availability_group: DagCreate {
            name: spec.link.clone(),
            primary: DagMember {
                availability_group: DagMemberRef::ArcAvailabilityGroup(spec.source.ag.clone()),
                listener_url: Some(spec.source.endpoint_url()),
                availability_mode: None,
                failover_mode: None,
                seeding_mode: Some(seeding),
                certificate_name: Some(spec.source.certificate.clone()),
            },
            secondary: DagMember {
                availability_group: DagMemberRef::ManagedInstance(spec.target.instance.clone()),
                listener_url: None,
                availability_mode: None,
                failover_mode: None,
                seeding_mode: Some(seeding),
                certificate_name: None,
            },
        },
        instance_availability_group: Some(spec.target.ag.clone()),
    }
}

/// The [`ArcOp`] of `op` for the link `spec`. A forced failover is refused (nothing to send)
/// unless its acknowledgement names the link: the machine asked for it already, and the route
/// asks again where the request is built.
pub fn link_op(spec: &LinkSpec, op: &ArcLinkOp) -> Result<ArcOp, PortError> {
    let link = spec.link.clone();
    Ok(match op {
        ArcLinkOp::CreateLink => ArcOp::CreateMiLink(Box::new(create_link(spec))),
        ArcLinkOp::Failover { kind } => ArcOp::FailoverMiLink {
            managed_instance: spec.target.instance.clone(),
            failover: match kind {
                FailoverKind::Planned => ArcFailover::Planned,
                FailoverKind::Forced(Some(ack)) if ack.link == link.as_str() => {
                    ArcFailover::ForcedAllowDataLoss
                }
                FailoverKind::Forced(ack) => {
                    return Err(PortError::permanent(
                        PortErrorKind::Other(ACKNOWLEDGEMENT_REQUIRED.to_owned()),
                        format!(
                            "a forced failover of '{link}' may lose data and needs an \
                             acknowledgement naming the link{}; nothing was sent",
                            match ack {
                                Some(ack) => format!(" (it named '{}')", ack.link),
                                None => String::new(),
                            }
                        ),
                    ));
                }
            },
            link,
        },
        ArcLinkOp::DeleteLink => ArcOp::DeleteMiLink { link },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::DataLossAcknowledgement;

    #[test]
    fn a_forced_failover_is_rendered_only_with_the_links_acknowledgement() {
        let spec = crate::test_support::spec();
        let forced = |ack: Option<&str>| ArcLinkOp::Failover {
            kind: FailoverKind::Forced(ack.map(|l| DataLossAcknowledgement { link: l.into() })),
        };
        for ack in [None, Some("another-link")] {
            let err = link_op(&spec, &forced(ack)).unwrap_err();
            assert_eq!(err.code(), ACKNOWLEDGEMENT_REQUIRED);
            assert!(!err.transient);
        }
        let op = link_op(&spec, &forced(Some(spec.link.as_str()))).unwrap();
        assert!(matches!(
            op,
            ArcOp::FailoverMiLink {
                failover: ArcFailover::ForcedAllowDataLoss,
                ..
            }
        ));
        let planned = ArcLinkOp::Failover {
            kind: FailoverKind::Planned,
        };
        assert!(matches!(
            link_op(&spec, &planned).unwrap(),
            ArcOp::FailoverMiLink {
                failover: ArcFailover::Planned,
                ..
            }
        ));
    }

    #[test]
    fn the_create_names_the_specs_groups_endpoint_and_instance() {
        let spec = crate::test_support::spec();
        let create = create_link(&spec);
        assert_eq!(create.availability_group.name, spec.source.ag);
        assert_eq!(create.availability_group.databases, spec.databases);
        assert_eq!(create.distributed_availability_group.name, spec.link);
        assert_eq!(
            create
                .distributed_availability_group
                .secondary
                .availability_group,
            DagMemberRef::ManagedInstance(spec.target.instance.clone())
        );
        assert_eq!(
            create.instance_availability_group,
            Some(spec.target.ag.clone())
        );
    }
}
