//! A MultiDatabase link's database list changed with `PATCH` ([`InstanceOp::SetLinkDatabases`]):
//! what ARM refuses (and that a refusal changes nothing), a database that joins and is seeded
//! with its rows, and one that leaves and becomes independent on the instance.

use std::time::Duration;

use super::super::fixtures::{
    RETURNS, add_to_sql_ag, finish, join_link, multi_database_lab, until_synchronizing,
};
use super::super::*;
use super::code;
use crate::lifecycle::InstanceOp;
use crate::names::LinkName;
use crate::ports::{ArmReply, ManagedInstance};

fn db(name: &str) -> DatabaseName {
    DatabaseName::new(name).unwrap()
}

fn set(lab: &Lab, names: &[&str]) -> InstanceOp {
    InstanceOp::SetLinkDatabases {
        link: lab.spec.link.clone(),
        databases: names.iter().map(|n| db(n)).collect(),
    }
}

fn link_list(lab: &Lab) -> Vec<DatabaseName> {
    lab.sim.with_world(|w| {
        w.instance
            .links
            .get(&lab.spec.link)
            .map(|l| l.properties.databases.clone())
            .unwrap_or_default()
    })
}

fn replicated(lab: &Lab) -> Vec<DatabaseName> {
    lab.sim.with_world(|w| {
        w.replications
            .get(&lab.spec.link)
            .map(|r| r.databases.keys().cloned().collect())
            .unwrap_or_default()
    })
}

#[tokio::test]
async fn a_database_joins_a_multidatabase_link_and_is_seeded_with_its_rows() {
    let lab = multi_database_lab(7);
    join_link(&lab).await;
    let returns = db(RETURNS);
    assert_eq!(lab.sim.snapshot(Side::ManagedInstance, &returns), None);

    add_to_sql_ag(&lab, &returns);
    let mi = lab.sim.managed_instance();
    let reply = mi
        .begin(&set(&lab, &[Lab::TOYSTORE, RETURNS]))
        .await
        .unwrap();
    assert!(matches!(reply, ArmReply::Accepted(_)), "{reply:?}");
    finish(&lab, &mi, reply).await.unwrap();
    assert_eq!(link_list(&lab), [db(Lab::TOYSTORE), returns.clone()]);
    until_synchronizing(&lab, &[db(Lab::TOYSTORE), returns.clone()]);

    // Rows written on SQL Server after the join reach the instance's new copy.
    lab.sim.write(Side::SqlServer, &returns, 40).unwrap();
    lab.sim.advance(Duration::from_secs(30));
    let parity = lab.sim.parity(&returns).unwrap();
    assert!(parity.all_match(), "{parity:?}");
    let rows: u64 = lab
        .sim
        .snapshot(Side::ManagedInstance, &returns)
        .unwrap()
        .tables
        .iter()
        .map(|t| t.rows)
        .sum();
    assert!(
        rows >= 20_000,
        "the instance holds {rows} rows of {RETURNS}"
    );
    assert_eq!(lab.sim.lost_transactions(&returns), 0);

    // The same list again is already done: no operation starts.
    let again = mi
        .begin(&set(&lab, &[RETURNS, Lab::TOYSTORE]))
        .await
        .unwrap();
    assert_eq!(again, ArmReply::Completed);
}

#[tokio::test]
async fn a_database_left_out_of_the_list_leaves_the_link_and_becomes_independent() {
    let mut lab = multi_database_lab(8);
    let returns = db(RETURNS);
    lab.spec.databases.push(returns.clone());
    join_link(&lab).await;
    assert_eq!(replicated(&lab).len(), 2);
    let written = lab.sim.write(Side::SqlServer, &returns, 10);
    assert!(written.is_ok());
    lab.sim.advance(Duration::from_secs(30));
    assert!(
        lab.sim
            .with_world(|w| w.writable(Side::ManagedInstance, &returns).is_err()),
        "a linked copy is read-only"
    );

    let mi = lab.sim.managed_instance();
    let reply = mi.begin(&set(&lab, &[Lab::TOYSTORE])).await.unwrap();
    finish(&lab, &mi, reply).await.unwrap();
    assert_eq!(link_list(&lab), [db(Lab::TOYSTORE)]);
    assert_eq!(replicated(&lab), [db(Lab::TOYSTORE)]);
    lab.sim.with_world(|w| {
        assert_eq!(
            w.instance.databases.get(&returns).map(|d| d.link.clone()),
            Some(None),
            "the copy stays, outside the link"
        );
        assert!(w.writable(Side::ManagedInstance, &returns).is_ok());
    });
    // ToyStore is still replicated.
    until_synchronizing(&lab, &[db(Lab::TOYSTORE)]);
}

#[tokio::test]
async fn arm_refuses_a_bad_database_list_and_the_link_is_unchanged() {
    let lab = multi_database_lab(9);
    join_link(&lab).await;
    let mi = lab.sim.managed_instance();
    let before = link_list(&lab);
    let refuse = |names: &'static [&'static str]| set(&lab, names);

    // An empty list (the link is ended by DELETE, not by an empty list).
    let e = mi.begin(&refuse(&[])).await.unwrap_err();
    assert!(
        code(&e).contains("InvalidDistributedAvailabilityGroupsUpdateRequestDatabases"),
        "{e}"
    );
    // A database named twice.
    let e = mi
        .begin(&refuse(&[Lab::TOYSTORE, Lab::TOYSTORE]))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("named twice"), "{e}");
    // A link that does not exist.
    let e = mi
        .begin(&InstanceOp::SetLinkDatabases {
            link: LinkName::new("dag-other").unwrap(),
            databases: vec![db(Lab::TOYSTORE)],
        })
        .await
        .unwrap_err();
    assert!(code(&e).contains("404"), "{e}");
    // A database that already exists on the instance, outside the link.
    let returns = db(RETURNS);
    add_to_sql_ag(&lab, &returns);
    lab.sim.with_world_mut(|w| {
        let copy = w
            .instance
            .databases
            .get(&db(Lab::TOYSTORE))
            .cloned()
            .unwrap();
        let mut copy = copy;
        copy.link = None;
        w.instance.databases.insert(returns.clone(), copy);
    });
    let e = mi
        .begin(&refuse(&[Lab::TOYSTORE, RETURNS]))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    lab.sim.with_world_mut(|w| {
        w.instance.databases.remove(&returns);
    });
    assert_eq!(link_list(&lab), before);

    // Accepted, but SQL Server's AG lacks the database: the operation fails.
    let reply = mi
        .begin(&refuse(&[Lab::TOYSTORE, Lab::CUSTOMER360]))
        .await
        .unwrap();
    let e = finish(&lab, &mi, reply).await.unwrap_err();
    assert!(e.to_string().contains("ADD DATABASE"), "{e}");
    assert_eq!(link_list(&lab), before);
    // In the AG, but a FILESTREAM database cannot be replicated.
    add_to_sql_ag(&lab, &db(Lab::CUSTOMER360));
    let reply = mi
        .begin(&refuse(&[Lab::TOYSTORE, Lab::CUSTOMER360]))
        .await
        .unwrap();
    let e = finish(&lab, &mi, reply).await.unwrap_err();
    assert!(
        code(&e).contains("ManagedInstanceLinkSourceDbHasFilestream"),
        "{e}"
    );
    assert_eq!(link_list(&lab), before);
    assert_eq!(replicated(&lab), before);

    // While one change runs, another is refused with 409 and Retry-After.
    let ArmReply::Accepted(_) = mi.begin(&refuse(&[Lab::TOYSTORE, RETURNS])).await.unwrap() else {
        panic!("not accepted");
    };
    let e = mi.begin(&refuse(&[RETURNS])).await.unwrap_err();
    assert!(code(&e).contains("409"), "{e}");
    assert!(e.retry_after.is_some());
}

#[tokio::test]
async fn a_single_database_link_keeps_its_one_database() {
    let mut lab = multi_database_lab(3);
    lab.spec.link = LinkName::new("DAG_ToyStore").unwrap();
    lab.spec.mode = crate::names::LinkMode::SingleDatabase;
    join_link(&lab).await;
    let e = lab
        .sim
        .managed_instance()
        .begin(&InstanceOp::SetLinkDatabases {
            link: lab.spec.link.clone(),
            databases: vec![db(Lab::TOYSTORE), db(RETURNS)],
        })
        .await
        .unwrap_err();
    assert!(
        code(&e).contains("InvalidDistributedAvailabilityGroupsUpdateRequestDatabases"),
        "{e}"
    );
    assert!(e.to_string().contains("single-database"), "{e}");
    assert_eq!(link_list(&lab), [db(Lab::TOYSTORE)]);
    assert_eq!(replicated(&lab), [db(Lab::TOYSTORE)]);
}
