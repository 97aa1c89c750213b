//! Worlds for tests that need more than the Tailspin lab's single-database link.

use std::time::Duration;

use super::lab::{DatabaseTopology, Lab, TableTopology};
use super::sql::ddl::fixtures::link_ops;
use super::world::ReplicaPhase;
use super::{SimConfig, SimManagedInstance};
use crate::lifecycle::{InstanceOp, LinkProperties, SourceOp};
use crate::names::{DatabaseName, LinkMode, LinkName};
use crate::ports::{ArmReply, ManagedInstance, PollReply, PortError, SourceReply, SourceServer};

/// The third database of [`multi_database_lab`]: ready, in none of the link's lists at first.
pub(crate) const RETURNS: &str = "ToyStore_Returns";

/// The Tailspin lab with a third, ready database ([`RETURNS`], 20,000 rows) and a MultiDatabase
/// link named `dag-toystore` that carries ToyStore.
pub(crate) fn multi_database_lab(seed: u64) -> Lab {
    let config = SimConfig::with_seed(seed);
    let mut topology = Lab::tailspin_topology(config.start).unwrap();
    topology.source.databases.push(DatabaseTopology {
        tables: vec![TableTopology::new("dbo.Returns", 20_000)],
        compatibility_level: 160,
        ..DatabaseTopology::ready(DatabaseName::new(RETURNS).unwrap(), 512, config.start)
    });
    let toystore = DatabaseName::new(Lab::TOYSTORE).unwrap();
    let mut lab = Lab::from_topology(topology, config, &toystore).unwrap();
    lab.spec.link = LinkName::new("dag-toystore").unwrap();
    lab.spec.mode = LinkMode::MultiDatabase;
    lab
}

/// The `PUT` of the lab's link in the spec's mode, with the spec's databases.
pub(crate) fn put_link(lab: &Lab) -> InstanceOp {
    let s = &lab.spec;
    InstanceOp::PutLink {
        link: s.link.clone(),
        properties: LinkProperties {
            instance_link_role: crate::lifecycle::Side::SqlServer,
            instance_ag: s.target.ag.clone(),
            partner_ag: s.source.ag.clone(),
            partner_endpoint: s.source.endpoint_url(),
            failover_mode: s.failover_mode,
            seeding_mode: s.seeding_mode,
            link_mode: s.mode,
            databases: s.databases.clone(),
        },
    }
}

/// Polls `reply`'s operation to its end in process, letting the world's time pass.
pub(crate) async fn finish(
    lab: &Lab,
    mi: &SimManagedInstance,
    reply: ArmReply,
) -> Result<(), PortError> {
    let ArmReply::Accepted(operation) = reply else {
        return Ok(());
    };
    for _ in 0..10_000 {
        match mi.poll(&operation).await? {
            PollReply::Succeeded => return Ok(()),
            PollReply::Running { retry_after } => {
                lab.sim
                    .advance(retry_after.unwrap_or(Duration::from_secs(10)));
            }
        }
    }
    panic!("the operation {} never ended", operation.url);
}

/// Lets the world run until every database in `databases` synchronizes on the lab's link.
pub(crate) fn until_synchronizing(lab: &Lab, databases: &[DatabaseName]) {
    let link = lab.spec.link.clone();
    for _ in 0..2_000 {
        let done = lab.sim.with_world(|w| {
            w.replications.get(&link).is_some_and(|r| {
                databases.iter().all(|db| {
                    r.databases
                        .get(db)
                        .is_some_and(|d| matches!(d.phase, ReplicaPhase::Synchronizing))
                })
            })
        });
        if done {
            return;
        }
        lab.sim.advance(Duration::from_secs(5));
    }
    panic!("{databases:?} never synchronized: {:?}", lab.sim.events());
}

/// Prepares both sides in process and joins the lab's link, then waits until its databases
/// synchronize.
pub(crate) async fn join_link(lab: &Lab) {
    let sql = lab.sim.sql_server();
    let mi = lab.sim.managed_instance();
    for op in link_ops(lab) {
        let op = match op {
            SourceOp::ImportInstanceCertificate { fqdn, .. } => {
                let ArmReply::PublicKey(der) =
                    mi.begin(&InstanceOp::GetEndpointCertificate).await.unwrap()
                else {
                    panic!("no endpoint certificate");
                };
                SourceOp::ImportInstanceCertificate { fqdn, der }
            }
            op => op,
        };
        let last = matches!(op, SourceOp::CreateDistributedAvailabilityGroup { .. });
        if let SourceReply::PublicKey(der) = sql.execute(&op).await.unwrap() {
            let put = InstanceOp::PutServerTrustCertificate {
                name: lab.spec.source.certificate.clone(),
                public_blob: der,
            };
            let reply = mi.begin(&put).await.unwrap();
            finish(lab, &mi, reply).await.unwrap();
        }
        if last {
            break;
        }
    }
    let reply = mi.begin(&put_link(lab)).await.unwrap();
    finish(lab, &mi, reply).await.unwrap();
    until_synchronizing(lab, &lab.spec.databases);
}

/// `ALTER AVAILABILITY GROUP … ADD DATABASE` on SQL Server, which milink does not send: the
/// user's step before a MultiDatabase link's list grows while SQL Server is primary.
pub(crate) fn add_to_sql_ag(lab: &Lab, database: &DatabaseName) {
    let ag = lab.spec.source.ag.clone();
    lab.sim.with_world_mut(|w| {
        if let Some(a) = w.source.ags.get_mut(&ag) {
            a.databases.push(database.clone());
        }
    });
}
