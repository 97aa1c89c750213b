//! Table tests (one or more per edge), guard tests, rejection tests and property tests of the
//! lifecycle machine.
//!
//! Every accepted input that changed the machine or produced effects is recorded as a
//! `(from, input, to)` triple; `every_edge_is_exercised_and_every_transition_is_in_the_table`
//! runs all scenarios and compares the triples with [`super::table::EDGES`].

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::Duration;

use super::*;
use crate::names::{
    AgName, CertificateName, DatabaseName, EndpointHost, EndpointName, InstanceId, LinkMode, Lsn,
    MiFqdn, ServerName, SqlVersion, TcpPort, UpdatePolicy,
};
use crate::time::{Date, Timestamp};

mod arc;
mod engine;
mod harness;
mod proptests;
mod scenarios;

use crate::redirect::WorkloadActivity;
use harness::*;

type Triple = (&'static str, &'static str, &'static str);

thread_local! {
    static SEEN: RefCell<BTreeSet<Triple>> = const { RefCell::new(BTreeSet::new()) };
}

fn record(triple: Triple) {
    SEEN.with(|s| {
        s.borrow_mut().insert(triple);
    });
}

fn take_seen() -> BTreeSet<Triple> {
    SEEN.with(|s| std::mem::take(&mut *s.borrow_mut()))
}

// ---------------------------------------------------------------------------------------------
// Specs.

const LINK: &str = "tailspin-link";

fn spec_with(
    version: &str,
    failover_mode: FailoverMode,
    initial_primary: Side,
    policy: UpdatePolicy,
    databases: &[&str],
) -> LinkSpec {
    let mode = if databases.len() > 1 {
        LinkMode::MultiDatabase
    } else {
        LinkMode::SingleDatabase
    };
    LinkSpec {
        link: LinkName::new(LINK).unwrap(),
        mode,
        databases: databases
            .iter()
            .map(|d| DatabaseName::new(*d).unwrap())
            .collect(),
        initial_primary,
        failover_mode,
        seeding_mode: SeedingMode::Automatic,
        source: SourceSpec {
            server: ServerName::new("TailspinSql").unwrap(),
            version: SqlVersion::parse(version).unwrap(),
            endpoint_host: EndpointHost::new("10.0.0.4").unwrap(),
            endpoint_port: TcpPort::MIRRORING_DEFAULT,
            endpoint_name: EndpointName::new("database_mirroring_endpoint").unwrap(),
            certificate: CertificateName::new("Cert_TailspinSql_endpoint").unwrap(),
            certificate_expiry: Date::new(2030, 1, 1).unwrap(),
            ag: AgName::new("AG_ToyStore").unwrap(),
        },
        target: TargetSpec {
            instance: InstanceId::from_parts("sub", "rg", "tailspin-mi").unwrap(),
            fqdn: MiFqdn::new("tailspin-mi.abc123.database.windows.net").unwrap(),
            ag: AgName::new("AG_ToyStore_MI").unwrap(),
            update_policy: policy,
        },
        session_timeout_s: 20,
        // The gate is read at the probe interval here; the sub-second gate has tests of its own.
        route: crate::lifecycle::LinkRoute::Direct,
        options: MachineOptions {
            gate_interval: MachineOptions::default().probe_interval,
            ..MachineOptions::default()
        },
    }
}

/// SQL Server 2022 CU13+ (T-SQL failover), two-way, SQL Server 2022 policy, ToyStore.
fn two_way() -> LinkSpec {
    spec_with(
        "16.0.4125.3",
        FailoverMode::Manual,
        Side::SqlServer,
        UpdatePolicy::SqlServer2022,
        &["ToyStore"],
    )
}

/// SQL Server 2019 CU20, one-way.
fn one_way() -> LinkSpec {
    spec_with(
        "15.0.4312.2",
        FailoverMode::None,
        Side::SqlServer,
        UpdatePolicy::SqlServer2022,
        &["ToyStore"],
    )
}

/// The managed instance is the initial primary (SQL Server 2022 CU13).
fn reverse() -> LinkSpec {
    spec_with(
        "16.0.4125.3",
        FailoverMode::Manual,
        Side::ManagedInstance,
        UpdatePolicy::SqlServer2022,
        &["ToyStore"],
    )
}

fn db(name: &str) -> DatabaseName {
    DatabaseName::new(name).unwrap()
}

fn lsn(v: u128) -> Lsn {
    Lsn::new(v).unwrap()
}

fn ack() -> Command {
    Command::Failover(FailoverKind::Forced(Some(DataLossAcknowledgement {
        link: LINK.to_owned(),
    })))
}

/// A forced failover: the acknowledgement, then the reading it starts with (the target
/// SECONDARY, the current primary PRIMARY). The command's events, then what the reading
/// issued.
fn force(h: &mut H) -> Vec<Effect> {
    let mut fx = h.cmd(ack());
    if let State::ForcingFailover {
        target,
        change: RoleChange::Checking,
        ..
    } = h.m.state().clone()
    {
        // The reading's probe is answered here: keep the command's events, then what the
        // reading issued.
        let mut events = std::mem::take(&mut h.events);
        let obs = h.roles(target.other(), Some(ReplicaRole::Secondary));
        fx = h.answer(obs);
        events.append(&mut h.events);
        h.events = events;
    }
    fx
}

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

const T0: u64 = 1_800_000_000_000;

// ---------------------------------------------------------------------------------------------
// Edge coverage.

#[test]
fn every_edge_is_exercised_and_every_transition_is_in_the_table() {
    let _ = take_seen();
    for (name, scenario) in scenarios::ALL {
        let before = SEEN.with(|s| s.borrow().len());
        scenario();
        let after = SEEN.with(|s| s.borrow().len());
        assert!(after >= before, "{name}");
    }
    let seen = take_seen();
    let table: BTreeSet<Triple> = EDGES.iter().map(|e| (e.from, e.input, e.to)).collect();
    let unexercised: Vec<_> = table.difference(&seen).collect();
    let undeclared: Vec<_> = seen.difference(&table).collect();
    assert!(
        undeclared.is_empty(),
        "transitions taken but missing from EDGES: {undeclared:#?}"
    );
    assert!(
        unexercised.is_empty(),
        "edges in EDGES that no table test exercises: {unexercised:#?}"
    );
    println!(
        "{} edges in EDGES, {} exercised by the table tests",
        table.len(),
        seen.len()
    );
}

#[test]
fn edge_table_is_well_formed() {
    let names: BTreeSet<&str> = Phase::ALL.iter().map(|p| p.name()).collect();
    let mut keys = BTreeSet::new();
    for edge in EDGES {
        assert!(names.contains(edge.from), "unknown phase {}", edge.from);
        assert!(names.contains(edge.to), "unknown phase {}", edge.to);
        assert!(
            !Phase::ALL
                .iter()
                .any(|p| p.is_terminal() && p.name() == edge.from),
            "terminal phases have no outgoing edge: {edge:?}"
        );
        assert!(
            keys.insert((edge.from, edge.input, edge.to)),
            "duplicate edge {edge:?}"
        );
    }
    // Every phase is reachable and every non-terminal phase can be left.
    for phase in Phase::ALL {
        if phase != Phase::Draft {
            assert!(
                EDGES.iter().any(|e| e.to == phase.name() && e.from != e.to),
                "{phase} is never entered"
            );
        }
        if !phase.is_terminal() {
            assert!(
                EDGES
                    .iter()
                    .any(|e| e.from == phase.name() && e.from != e.to),
                "{phase} is never left"
            );
        }
    }
}

#[test]
fn lifecycle_diagram_matches_the_edge_table() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/lifecycle.mmd");
    let rendered = table::mermaid();
    if std::env::var_os("MILINK_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == rendered,
        "docs/lifecycle.mmd is out of date with lifecycle/table.rs; refresh it with \
         `MILINK_BLESS=1 cargo test -p milink-core lifecycle_diagram`"
    );
}

#[test]
fn diagram_labels_are_valid_mermaid_transition_text() {
    let text = table::mermaid();
    assert!(text.starts_with("%%"));
    for line in text.lines().filter(|l| l.contains("-->")) {
        let label = line.split_once(" : ").map(|(_, l)| l).unwrap_or("");
        assert!(
            !label.contains(':') && !label.contains(';') && !label.contains('#'),
            "{line}"
        );
    }
    assert!(text.contains("CatchingUp --> FailingOver : Observed(ok) [sync on both sides"));
}

// ---------------------------------------------------------------------------------------------
// Spec validation.

#[test]
fn spec_validation_refuses_what_the_link_cannot_carry() {
    let ok = two_way();
    assert!(Machine::new(ok.clone()).is_ok());
    let refuse = |f: &dyn Fn(&mut LinkSpec)| {
        let mut s = ok.clone();
        f(&mut s);
        Machine::new(s).unwrap_err()
    };
    assert_eq!(refuse(&|s| s.databases.clear()), SpecError::NoDatabases);
    assert_eq!(
        refuse(&|s| s.databases.push(db("Customer360"))),
        SpecError::SingleDatabaseCount { count: 2 }
    );
    assert_eq!(
        refuse(&|s| {
            s.mode = LinkMode::MultiDatabase;
            s.databases.push(db("ToyStore"));
        }),
        SpecError::DuplicateDatabase {
            database: db("ToyStore")
        }
    );
    assert!(matches!(
        refuse(&|s| {
            s.mode = LinkMode::MultiDatabase;
            s.link = LinkName::new("Tailspin_Link").unwrap();
        }),
        SpecError::LinkName(_)
    ));
    let multi_2019 = refuse(&|s| {
        s.mode = LinkMode::MultiDatabase;
        s.failover_mode = FailoverMode::None;
        s.source.version = SqlVersion::parse("15.0.4312.2").unwrap();
    });
    assert!(matches!(
        multi_2019,
        SpecError::MultiDatabaseNeedsSql2022 { .. }
    ));
    assert_eq!(
        refuse(&|s| {
            s.mode = LinkMode::MultiDatabase;
            s.initial_primary = Side::ManagedInstance;
        }),
        SpecError::MultiDatabaseFromInstance
    );
    // 2019 before CU20, and 2014.
    let old = refuse(&|s| s.source.version = SqlVersion::parse("15.0.4298.1").unwrap());
    assert!(
        old.to_string().contains("update to 15.0.4312.2 or later"),
        "{old}"
    );
    assert!(matches!(
        refuse(&|s| s.source.version = SqlVersion::parse("12.0.6024.0").unwrap()),
        SpecError::VersionNotSupported { minimum: None, .. }
    ));
    // Two-way needs 2022/2025.
    let two_way_2019 = refuse(&|s| s.source.version = SqlVersion::parse("15.0.4312.2").unwrap());
    assert!(
        two_way_2019.to_string().contains("use FailoverMode::None"),
        "{two_way_2019}"
    );
    // The instance as initial primary: 2022 CU10+, two-way, matching policy.
    assert!(matches!(
        refuse(&|s| {
            s.initial_primary = Side::ManagedInstance;
            s.source.version = SqlVersion::parse("16.0.4085.2").unwrap();
        }),
        SpecError::InstancePrimaryNotSupported { .. }
    ));
    assert_eq!(
        refuse(&|s| {
            s.initial_primary = Side::ManagedInstance;
            s.failover_mode = FailoverMode::None;
        }),
        SpecError::InstancePrimaryNeedsTwoWay
    );
    assert_eq!(
        refuse(&|s| {
            s.initial_primary = Side::ManagedInstance;
            s.target.update_policy = UpdatePolicy::AlwaysUpToDate;
        }),
        SpecError::InstancePrimaryPolicyMismatch {
            policy: UpdatePolicy::AlwaysUpToDate,
            required: Some(UpdatePolicy::SqlServer2022)
        }
    );
    assert_eq!(
        refuse(&|s| s.session_timeout_s = 4),
        SpecError::SessionTimeoutTooShort { seconds: 4 }
    );
    assert_eq!(
        refuse(&|s| s.options.probe_interval = Duration::ZERO),
        SpecError::ZeroProbeInterval
    );
    // What is valid: one-way 2016 with the AG on a cluster, multi-database 2022, 2025 two-way.
    let mut s = one_way();
    s.source.version = SqlVersion::parse("13.0.6300.2").unwrap();
    assert!(Machine::new(s).is_ok());
    assert!(
        Machine::new(spec_with(
            "16.0.4125.3",
            FailoverMode::Manual,
            Side::SqlServer,
            UpdatePolicy::SqlServer2022,
            &["ToyStore", "Customer360"]
        ))
        .is_ok()
    );
    assert!(
        Machine::new(spec_with(
            "17.0.1000.7",
            FailoverMode::Manual,
            Side::ManagedInstance,
            UpdatePolicy::SqlServer2025,
            &["ToyStore"]
        ))
        .is_ok()
    );
}

#[test]
fn sql_server_2016_creates_the_ag_on_its_cluster() {
    let mut s = one_way();
    s.source.version = SqlVersion::parse("13.0.6300.2").unwrap();
    let mut h = H::new(s);
    h.cmd(Command::RecordAssessment(AssessmentOutcome {
        blockers: vec![],
    }));
    h.cmd(Command::Start);
    while h.phase() != Phase::CreatingAg {
        h.done();
    }
    assert!(matches!(
        h.pending(),
        Effect::Source {
            op: SourceOp::CreateAvailabilityGroup {
                spec: crate::tsql::CreateAgSpec {
                    cluster_type_none: false,
                    ..
                },
            },
            ..
        }
    ));
}

#[test]
fn the_machine_says_which_side_is_primary() {
    // From the state when there is no reading.
    let fresh = Machine::new(scenarios::reach(Phase::Replicating).spec()).unwrap();
    assert_eq!(fresh.primary(None), Side::SqlServer);
    // A caller's reading decides when the machine has none; both PRIMARY decides nothing.
    let side = |role| SideView {
        exists: true,
        role: Some(role),
        mode: None,
        partner_mode: None,
        version: None,
        update_policy: None,
        failover_mode: None,
        connected: true,
        databases: Vec::new(),
        live: false,
    };
    let reading = |source, instance| LinkObservation {
        source: side(source),
        instance: side(instance),
        unreachable: None,
    };
    let mi_primary = reading(ReplicaRole::Secondary, ReplicaRole::Primary);
    assert_eq!(fresh.primary(Some(&mi_primary)), Side::ManagedInstance);
    let both = reading(ReplicaRole::Primary, ReplicaRole::Primary);
    assert_eq!(fresh.primary(Some(&both)), Side::SqlServer);
    // The machine's own readings along the paths.
    assert_eq!(
        scenarios::reach(Phase::Replicating).m.primary(None),
        Side::SqlServer
    );
    assert_eq!(
        scenarios::reach(Phase::FailedOver).m.primary(None),
        Side::ManagedInstance
    );
    assert_eq!(
        scenarios::reach(Phase::DroppingDag).m.primary(None),
        Side::ManagedInstance
    );
}
