//! The catalog's consistency with the in-process simulator: milink's own probes, evaluated over
//! the catalog and parsed with `sqlserver::parse`, give back what the world reports in process,
//! at every stage of a link's life.

use std::time::Duration;

use crate::lifecycle::{
    ArmFailoverType, AvailabilityMode, FullBackup, InstanceOp, LinkProperties, LinkSpec, SideView,
    SourceOp,
};
use crate::names::{DatabaseName, LinkMode, LinkName};
use crate::ports::{ArmReply, ManagedInstance, PollReply, SourceReply, SourceServer};
use crate::sim::lab::Lab;
use crate::sim::tds::{ResultSet as WireSet, SessionInfo};
use crate::sim::world::ReplicaPhase;
use crate::sim::{SimClock, SimManagedInstance, SimSqlServer, World};
use crate::sqlserver::adapter::{link_state_batch, side_view_from_result_sets};
use crate::sqlserver::connection::ResultSet;
use crate::sqlserver::parse;
use crate::sqlserver::rows::Row;
use crate::time::{Clock, Timer, Timestamp};
use crate::tsql;

use super::super::live::{adapter_value, session, wire_datetime};
use super::super::query::run_select;
use crate::lifecycle::Side;

/// The adapter's result set for one of the evaluator's.
fn adapter_set(set: &WireSet) -> ResultSet {
    ResultSet {
        columns: set.columns.iter().map(|c| c.name.clone()).collect(),
        rows: set
            .rows
            .iter()
            .map(|values| {
                let mut row = Row::new();
                for (c, v) in set.columns.iter().zip(values) {
                    row.push(c.name.clone(), adapter_value(v));
                }
                row
            })
            .collect(),
    }
}

fn run(world: &World, side: Side, sql: &str) -> Vec<ResultSet> {
    run_select(world, side, &session(), sql)
        .unwrap_or_else(|e| panic!("{e:?}\n{sql}"))
        .iter()
        .map(adapter_set)
        .collect()
}

/// The in-process view with the differences of form the wire has: the connection error is
/// `sql:<number>: <text>` as the adapter types SQL Server's numbers.
fn normalized(mut view: SideView) -> SideView {
    for d in &mut view.databases {
        d.last_error = d.last_error.take().map(|e| format!("sql:{e}"));
    }
    view
}

/// Asserts the three consistencies at the world's current state.
/// What was compared: SQL Server's view, the client sessions on SQL Server, the full backups.
type Checked = (SideView, crate::redirect::WorkloadActivity, Vec<FullBackup>);

fn check(world: &World, link: &LinkName, dbs: &[DatabaseName], stage: &str) -> Checked {
    // SQL Server's view of the link.
    let sets = run(world, Side::SqlServer, link_state_batch(link).expose_sql());
    let wire = side_view_from_result_sets(dbs, &sets).unwrap();
    let mut all = dbs.to_vec();
    for d in world.source_ag_databases(link) {
        if !all.contains(&d) {
            all.push(d);
        }
    }
    let mut expected = normalized(world.side_view(Side::SqlServer, link, &all));
    // Without a DAG the world's view has no build; the adapter reads it with the probes anyway.
    if !expected.exists {
        expected.version = Some(world.source.version);
    }
    let mut wire = wire;
    // The DMV keeps the last connection error while connected; the adapter reports it only
    // while disconnected, the world always: compare it only while disconnected.
    if expected.connected {
        for d in expected
            .databases
            .iter_mut()
            .chain(wire.databases.iter_mut())
        {
            d.last_error = None;
        }
    }
    assert_eq!(wire, expected, "SQL Server's view at stage {stage}");
    let mut checked = (wire, Default::default(), Vec::new());

    // The workload probe, on both sides.
    for side in [Side::SqlServer, Side::ManagedInstance] {
        let sets = run(world, side, tsql::probe_workload_activity(dbs).expose_sql());
        let [set] = sets.as_slice() else {
            panic!("one result set")
        };
        let parsed = parse::workload_activity(&set.rows).unwrap();
        let mut expected = world.client_sessions(side, dbs);
        for s in &mut expected.sessions {
            s.oldest_transaction_start = s.oldest_transaction_start.map(wire_datetime);
        }
        assert_eq!(parsed, expected, "workload on {side:?} at stage {stage}");
        if side == Side::SqlServer {
            checked.1 = parsed;
        }
    }

    // The managed instance's own DMVs: its local replica's role is its link role, and its
    // database rows carry its view's LSNs.
    let mi = run(
        world,
        Side::ManagedInstance,
        &format!(
            "{}{}{}",
            tsql::probe_replica_states(link).expose_sql(),
            tsql::probe_database_replica_states_by_database(dbs).expose_sql(),
            tsql::probe_seeding_stats().expose_sql()
        ),
    );
    let replicas = parse::replica_states(&mi[0].rows).unwrap();
    let local = replicas.iter().find(|r| r.is_local == Some(true));
    assert_eq!(
        local.and_then(|r| r.role),
        world.role(Side::ManagedInstance, link),
        "the instance's role at stage {stage}"
    );
    let states = parse::database_replica_states(&mi[1].rows).unwrap();
    let mi_view = world.side_view(Side::ManagedInstance, link, dbs);
    for v in &mi_view.databases {
        let row = states.iter().find(|s| s.database == v.name && s.is_local);
        assert_eq!(
            row.and_then(|r| r.last_hardened_lsn),
            v.last_hardened_lsn,
            "the instance's hardened LSN at stage {stage}"
        );
        let seeding = parse::seeding_stats(&mi[2].rows).unwrap();
        assert_eq!(
            seeding
                .iter()
                .find(|s| s.database == v.name)
                .and_then(parse::SeedingStat::percent),
            v.seeding_percent,
            "the instance's seeding at stage {stage}"
        );
    }

    // The first full backups, on the managed instance.
    let sets = run(
        world,
        Side::ManagedInstance,
        tsql::probe_first_full_backups(dbs).expose_sql(),
    );
    let parsed = parse::full_backups(&sets[0].rows).unwrap();
    let expected: Vec<FullBackup> = world
        .full_backups_of(dbs)
        .into_iter()
        .map(|(database, finished)| FullBackup {
            database,
            finished: finished.map(wire_datetime),
        })
        .collect();
    assert_eq!(parsed, expected, "full backups at stage {stage}");
    checked.2 = parsed;
    checked
}

/// The readiness probes of certificates and endpoints against [`World::instance_facts`].
fn check_readiness(world: &World) {
    let facts = world.instance_facts();
    let sets = run(
        world,
        Side::SqlServer,
        tsql::readiness::certificates().expose_sql(),
    );
    let got: Vec<(String, String, String, i64)> = sets[0]
        .rows
        .iter()
        .map(|r| {
            (
                r.str("name").unwrap().to_owned(),
                r.str("subject").unwrap().to_owned(),
                r.str("pvt_key_encryption_type_desc").unwrap().to_owned(),
                r.i64("expiry_ms").unwrap(),
            )
        })
        .collect();
    let mut want: Vec<(String, String, String, i64)> = facts
        .certificates
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                c.subject.clone(),
                c.private_key.clone(),
                i64::try_from(wire_datetime(c.expiry).as_millis()).unwrap(),
            )
        })
        .collect();
    want.sort();
    assert!(got.len() >= 3, "{got:?}");
    assert_eq!(got, want);

    let sets = run(
        world,
        Side::SqlServer,
        tsql::readiness::mirroring_endpoints().expose_sql(),
    );
    let [row] = sets[0].rows.as_slice() else {
        panic!("one endpoint: {:?}", sets[0].rows)
    };
    let [e] = facts.endpoints.as_slice() else {
        panic!("one endpoint in the facts")
    };
    assert_eq!(row.str("name").unwrap(), e.name);
    assert_eq!(row.str("connection_auth_desc").unwrap(), e.authentication);
    assert_eq!(row.str("encryption_algorithm_desc").unwrap(), e.algorithm);
    assert_eq!(
        row.opt_str("certificate_name").unwrap(),
        e.certificate.as_deref()
    );
    assert_eq!(row.i64("port").unwrap(), i64::from(e.port));
}

struct Rig {
    lab: Lab,
    sql: SimSqlServer,
    mi: SimManagedInstance,
    clock: SimClock,
}

impl Rig {
    fn new(seed: u64) -> Rig {
        let lab = Lab::tailspin(seed).unwrap();
        Rig {
            sql: lab.sim.sql_server(),
            mi: lab.sim.managed_instance(),
            clock: lab.sim.clock(),
            lab,
        }
    }

    fn spec(&self) -> &LinkSpec {
        &self.lab.spec
    }

    fn check(&self, stage: &str) -> Checked {
        let link = self.spec().link.clone();
        let dbs = vec![self.lab.database.clone()];
        self.lab.sim.with_world(|w| check(w, &link, &dbs, stage))
    }

    async fn sleep(&self, d: Duration) {
        self.clock.sleep_until(self.clock.now().plus(d)).await;
    }

    async fn arm(&self, op: InstanceOp) {
        let r = self.mi.begin(&op).await.unwrap();
        let ArmReply::Accepted(op) = r else {
            return;
        };
        loop {
            match self.mi.poll(&op).await.unwrap() {
                PollReply::Running { retry_after } => {
                    self.sleep(retry_after.unwrap_or(Duration::from_secs(5)))
                        .await
                }
                PollReply::Succeeded => return,
            }
        }
    }

    async fn tsql(&self, op: SourceOp) -> SourceReply {
        self.sql.execute(&op).await.unwrap()
    }

    async fn create_link(&self) {
        let s = self.spec().clone();
        self.tsql(SourceOp::EnsureMasterKey).await;
        self.tsql(SourceOp::EnsureEndpointCertificate {
            name: s.source.certificate.clone(),
            subject: format!("Certificate for {}", s.source.certificate),
            expiry: s.source.certificate_expiry,
        })
        .await;
        self.tsql(SourceOp::EnsureMirroringEndpoint {
            spec: tsql::MirroringEndpointSpec {
                name: s.source.endpoint_name.clone(),
                port: s.source.endpoint_port,
                certificate: s.source.certificate.clone(),
                auth: tsql::EndpointAuth::Certificate,
                encryption: tsql::EndpointEncryption::Aes,
            },
        })
        .await;
        let SourceReply::PublicKey(der) = self
            .tsql(SourceOp::ExportCertificatePublicKey {
                name: s.source.certificate.clone(),
            })
            .await
        else {
            panic!("no public key");
        };
        self.arm(InstanceOp::PutServerTrustCertificate {
            name: s.source.certificate.clone(),
            public_blob: der,
        })
        .await;
        let ArmReply::PublicKey(mi_der) = self
            .mi
            .begin(&InstanceOp::GetEndpointCertificate)
            .await
            .unwrap()
        else {
            panic!("no endpoint certificate");
        };
        self.tsql(SourceOp::ImportInstanceCertificate {
            fqdn: s.target.fqdn.clone(),
            der: mi_der,
        })
        .await;
        self.tsql(SourceOp::EnsureRootCaTrust).await;
        self.tsql(SourceOp::CreateAvailabilityGroup {
            spec: tsql::CreateAgSpec {
                ag: s.source.ag.clone(),
                databases: s.databases.clone(),
                replica: s.source.server.clone(),
                endpoint_url: s.source.endpoint_url(),
                cluster_type_none: true,
            },
        })
        .await;
        self.tsql(SourceOp::CreateDistributedAvailabilityGroup {
            spec: tsql::CreateDagSpec {
                dag: s.link.clone(),
                sql_ag: s.source.ag.clone(),
                sql_listener_url: s.source.endpoint_url(),
                mi_ag: s.target.ag.clone(),
                mi_fqdn: s.target.fqdn.clone(),
                mi_database: None,
                session_timeout_s: s.session_timeout_s,
            },
        })
        .await;
        self.arm(InstanceOp::PutLink {
            link: s.link.clone(),
            properties: LinkProperties {
                instance_link_role: Side::SqlServer,
                instance_ag: s.target.ag.clone(),
                partner_ag: s.source.ag.clone(),
                partner_endpoint: s.source.endpoint_url(),
                failover_mode: s.failover_mode,
                seeding_mode: s.seeding_mode,
                link_mode: LinkMode::SingleDatabase,
                databases: s.databases.clone(),
            },
        })
        .await;
    }

    async fn wait_for(&self, pred: impl Fn(&World) -> bool) {
        for _ in 0..720 {
            if self.lab.sim.with_world(&pred) {
                return;
            }
            self.sleep(Duration::from_secs(5)).await;
        }
        panic!("the world never got there");
    }

    fn phase(&self, w: &World) -> Option<ReplicaPhase> {
        w.replications
            .get(&self.spec().link)
            .and_then(|r| r.databases.get(&self.lab.database))
            .map(|d| d.phase.clone())
    }
}

#[tokio::test]
async fn probes_over_the_catalog_give_back_the_in_process_views_through_a_links_life() {
    let rig = Rig::new(21);
    let link = rig.spec().link.clone();
    let db = rig.lab.database.clone();
    let (view, _, backups) = rig.check("before anything");
    assert!(!view.exists);
    assert_eq!(backups.len(), 1);

    rig.create_link().await;
    rig.wait_for(|w| matches!(rig.phase(w), Some(ReplicaPhase::Seeding(s)) if s.percent() > 5))
        .await;
    let (view, _, _) = rig.check("seeding");
    assert!(view.databases[0].seeding_percent.is_some_and(|p| p > 5));

    rig.wait_for(|w| matches!(rig.phase(w), Some(ReplicaPhase::Synchronizing)))
        .await;
    rig.check("joined");
    rig.lab.sim.with_world(check_readiness);

    rig.lab
        .sim
        .hold_open_transaction(Side::SqlServer, &db, Duration::from_secs(600))
        .unwrap();
    rig.lab
        .sim
        .start_workload(crate::sim::workload::WorkloadSpec {
            database: db.clone(),
            target: Side::SqlServer,
            transactions_per_second: 10.0,
            max_rows_per_transaction: 4,
        });
    rig.sleep(Duration::from_secs(30)).await;
    let (view, activity, _) = rig.check("replicating a workload with an open transaction");
    assert!(view.connected);
    assert!(view.databases[0].log_send_queue_kb.is_some());
    assert!(
        activity.sessions.iter().any(|s| s.open_transactions == 1),
        "{activity:?}"
    );

    // Synchronous commit, then a planned failover to the instance.
    let s = rig.spec().clone();
    rig.tsql(SourceOp::SetAvailabilityMode {
        dag: link.clone(),
        sql_ag: s.source.ag.clone(),
        mi_ag: s.target.ag.clone(),
        mode: AvailabilityMode::SynchronousCommit,
    })
    .await;
    rig.arm(InstanceOp::SetReplicationMode {
        link: link.clone(),
        mode: AvailabilityMode::SynchronousCommit,
    })
    .await;
    rig.wait_for(|w| w.is_synchronized(&link)).await;
    rig.check("synchronized");
    rig.lab.sim.stop_workload();
    rig.sleep(Duration::from_secs(5)).await;
    rig.tsql(SourceOp::Failover { dag: link.clone() }).await;
    rig.sleep(Duration::from_secs(5)).await;
    let (view, _, _) = rig.check("after a planned failover");
    assert_eq!(view.role, Some(crate::lifecycle::ReplicaRole::Secondary));

    // Back to SQL Server, then a partition and a forced failover: both primaries.
    rig.arm(InstanceOp::Failover {
        link: link.clone(),
        failover_type: ArmFailoverType::Planned,
    })
    .await;
    rig.sleep(Duration::from_secs(5)).await;
    rig.check("after the planned failback");
    rig.lab.sim.partition(Duration::from_secs(600));
    rig.sleep(Duration::from_secs(2)).await;
    rig.lab.sim.write(Side::SqlServer, &db, 2).unwrap();
    let (view, _, _) = rig.check("partitioned");
    assert!(!view.connected || view.databases[0].partner.is_some());
    rig.arm(InstanceOp::Failover {
        link: link.clone(),
        failover_type: ArmFailoverType::ForcedAllowDataLoss,
    })
    .await;
    let (view, _, _) = rig.check("split brain after a forced failover");
    assert_eq!(view.role, Some(crate::lifecycle::ReplicaRole::Primary));
    assert!(
        rig.lab
            .sim
            .with_world(|w| w.role(Side::ManagedInstance, &link))
            == Some(crate::lifecycle::ReplicaRole::Primary)
    );
    rig.tsql(SourceOp::SetRoleSecondary { dag: link.clone() })
        .await;
    rig.sleep(Duration::from_secs(700)).await;
    rig.check("the old primary rejoined as secondary");

    rig.tsql(SourceOp::DropDistributedAvailabilityGroup { dag: link.clone() })
        .await;
    let (view, _, backups) = rig.check("after the link was dropped on SQL Server");
    assert!(!view.exists);
    assert!(backups[0].finished.is_some());
}

#[test]
fn the_catalog_names_its_views_as_sql_server_does() {
    let lab = Lab::tailspin(1).unwrap();
    lab.sim.with_world(|w| {
        let s = session();
        for name in [
            &["sys", "databases"][..],
            &["master", "sys", "databases"],
            &["MASTER", "SYS", "Databases"],
            &["msdb", "dbo", "backupset"],
        ] {
            assert!(
                super::table(w, Side::SqlServer, &s, name).is_some(),
                "{name:?}"
            );
        }
        for name in [
            &["dbo", "backupset"][..],
            &["nowhere", "sys", "databases"],
            &["sys", "no_such_view"],
        ] {
            assert!(
                super::table(w, Side::SqlServer, &s, name).is_none(),
                "{name:?}"
            );
        }
        // The fabric parameters exist only on the managed instance.
        let mi = super::table(
            w,
            Side::ManagedInstance,
            &s,
            &["sys", "dm_hadr_fabric_config_parameters"],
        )
        .unwrap();
        assert_eq!(mi.rows.len(), 2);
        let port = run(
            w,
            Side::ManagedInstance,
            tsql::probe_hadr_port().expose_sql(),
        );
        let port = parse::hadr_port(&port[0].rows).unwrap().unwrap();
        assert!((11000..12000).contains(&port.get()));
        let dns = run(
            w,
            Side::ManagedInstance,
            tsql::probe_dns_record_name().expose_sql(),
        );
        assert_eq!(
            parse::dns_record_name(&dns[0].rows).unwrap().as_deref(),
            Some(w.instance.fqdn.as_str())
        );
        let add_issuer = run(
            w,
            Side::SqlServer,
            tsql::probe_sp_certificate_add_issuer_exists().expose_sql(),
        );
        assert_eq!(
            parse::add_issuer_exists(&add_issuer[0].rows).unwrap(),
            w.source.version.capabilities().link_supported
        );
        let props = run(
            w,
            Side::SqlServer,
            tsql::readiness::instance_properties().expose_sql(),
        );
        assert_eq!(
            parse::product_version(&props[0].rows).unwrap(),
            w.source.version
        );
        // The columns added for the link's prerequisites answer as the in-process facts say.
        let facts = w.instance_facts();
        let row = &props[0].rows[0];
        assert_eq!(row.opt_i64("is_sysadmin").unwrap(), Some(1));
        assert_eq!(facts.is_sysadmin, Some(true));
        assert_eq!(row.opt_str("instance_name").unwrap(), None);
        assert_eq!(row.opt_str("local_net_address").unwrap(), None);
        assert_eq!(row.opt_str("cluster_name").unwrap(), None);
        let startup = row.opt_i64("startup_trace_flags").unwrap().unwrap();
        let expected: i64 = [(1800, 1), (9567, 2), (12381, 4)]
            .into_iter()
            .filter(|(f, _)| w.source.trace_flags.contains(f))
            .map(|(_, bit)| bit)
            .sum();
        assert_eq!(startup, expected);
        assert_eq!(
            facts.startup_trace_flags.as_ref().map(Vec::len),
            Some(usize::try_from(expected.count_ones()).unwrap())
        );
        assert_eq!(row.opt_bool("has_multidb_milink").unwrap(), Some(false));
    });
}

mod principals;
mod wire;
