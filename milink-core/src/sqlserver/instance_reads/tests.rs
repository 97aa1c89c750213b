//! The managed instance's T-SQL reads against a scripted loopback TDS server that answers with
//! recorded rowsets shaped as the probes document them, and the decorator's delegation.

use std::sync::Arc;

use super::*;
use crate::lifecycle::OperationKind;
use crate::ports::MockManagedInstance;
use crate::sim::tds::{Column, Outcome, SqlType, Value as WireValue};
use crate::sqlserver::testkit::{Lab, bounded, error, nvarchar, rows, s};
use crate::time::Timestamp;

fn db(name: &str) -> DatabaseName {
    DatabaseName::new(name).unwrap()
}

fn at(millis: u64) -> WireValue {
    WireValue::DateTime(Timestamp::from_millis(millis))
}

/// 2026-11-26 06:00:00 and 06:41:03.250 UTC.
const STARTED: u64 = 1_795_672_800_000;
const FINISHED: u64 = 1_795_675_263_250;

/// `probe_first_full_backups` on the instance for ToyStore (backed up) and Customer360 (not
/// yet: NULLs from the OUTER APPLY).
fn recorded_backups() -> Outcome {
    rows(
        vec![
            nvarchar("database_name"),
            Column::new("backup_start_date", SqlType::DateTime),
            Column::new("backup_finish_date", SqlType::DateTime),
            Column::new("is_copy_only", SqlType::Bit),
        ],
        vec![
            vec![
                s("ToyStore"),
                at(STARTED),
                at(FINISHED),
                WireValue::Bit(false),
            ],
            vec![
                s("Customer360"),
                WireValue::Null,
                WireValue::Null,
                WireValue::Null,
            ],
        ],
    )
}

/// `probe_workload_activity`: an application connected to ToyStore with an open transaction,
/// and an idle session without host or program name.
fn recorded_workload() -> Outcome {
    rows(
        vec![
            Column::new("session_id", SqlType::SmallInt),
            nvarchar("database_name"),
            nvarchar("login_name"),
            nvarchar("host_name"),
            nvarchar("program_name"),
            Column::new("status", SqlType::NVarChar(Some(30))),
            Column::new("open_transactions", SqlType::Int),
            Column::new("oldest_transaction_begin", SqlType::DateTime),
        ],
        vec![
            vec![
                WireValue::SmallInt(71),
                s("ToyStore"),
                s("toystore_app"),
                s("WEB01"),
                s("ToyStore.Web"),
                s("sleeping"),
                WireValue::Int(2),
                at(FINISHED),
            ],
            vec![
                WireValue::SmallInt(88),
                s("ToyStore"),
                s("reporting"),
                WireValue::Null,
                WireValue::Null,
                s("sleeping"),
                WireValue::Int(0),
                WireValue::Null,
            ],
        ],
    )
}

/// Answers by the catalog view the batch reads.
async fn instance_lab() -> Lab {
    Lab::start(|sql| {
        if sql.contains("msdb.dbo.backupset") {
            vec![recorded_backups()]
        } else if sql.contains("sys.dm_exec_sessions") {
            vec![recorded_workload()]
        } else {
            vec![error(208, "Invalid object name.")]
        }
    })
    .await
}

#[tokio::test]
async fn full_backups_are_read_with_nulls_for_a_database_not_backed_up() {
    let lab = instance_lab().await;
    let reads = InstanceTsql::new(lab.connection());
    let got = bounded(reads.full_backups(&[db("ToyStore"), db("Customer360")]))
        .await
        .unwrap();
    assert_eq!(
        got,
        [
            FullBackup {
                database: db("ToyStore"),
                finished: Some(Timestamp::from_millis(FINISHED)),
            },
            FullBackup {
                database: db("Customer360"),
                finished: None,
            },
        ]
    );
    let seen = lab.seen();
    assert_eq!(seen.len(), 1, "one round trip");
    assert!(seen[0].contains("N'ToyStore'") && seen[0].contains("N'Customer360'"));
}

#[tokio::test]
async fn a_rowset_for_other_databases_is_refused() {
    let lab = instance_lab().await;
    let reads = InstanceTsql::new(lab.connection());
    let err = bounded(reads.full_backups(&[db("Customer360"), db("ToyStore")]))
        .await
        .unwrap_err();
    assert_eq!(err.kind, PortErrorKind::Other(ROWSET_CODE.to_owned()));
    assert!(!err.transient);
    assert!(
        err.message.contains("ToyStore, Customer360"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn nothing_to_read_is_no_round_trip() {
    let lab = instance_lab().await;
    let reads = InstanceTsql::new(lab.connection());
    assert!(bounded(reads.full_backups(&[])).await.unwrap().is_empty());
    assert!(
        bounded(reads.workload_activity(&[]))
            .await
            .unwrap()
            .is_quiet()
    );
    assert!(lab.seen().is_empty());
}

#[tokio::test]
async fn workload_activity_is_read_with_its_sessions() {
    let lab = instance_lab().await;
    let reads = InstanceTsql::new(lab.connection());
    let got = bounded(reads.workload_activity(&[db("ToyStore")]))
        .await
        .unwrap();
    assert_eq!(got.sessions.len(), 2);
    assert_eq!(got.open_transactions(), 2);
    let first = &got.sessions[0];
    assert_eq!(
        (
            first.session_id,
            first.login.as_str(),
            first.host.as_deref()
        ),
        (71, "toystore_app", Some("WEB01"))
    );
    assert_eq!(
        first.oldest_transaction_start,
        Some(Timestamp::from_millis(FINISHED))
    );
    let idle = &got.sessions[1];
    assert_eq!(
        (idle.host.as_deref(), idle.program.as_deref()),
        (None, None)
    );
    assert_eq!(idle.oldest_transaction_start, None);
    assert!(lab.seen()[0].contains("N'ToyStore'"));
}

#[tokio::test]
async fn server_errors_are_typed_port_errors() {
    let lab = Lab::start(|sql| {
        if sql.contains("msdb.dbo.backupset") {
            vec![error(
                229,
                "The SELECT permission was denied on the object 'backupset', database 'msdb', \
                 schema 'dbo'.",
            )]
        } else {
            vec![Outcome::Error(crate::sim::tds::SqlError::new(
                40613,
                17,
                "Database 'master' on server 'tailspin-mi' is not currently available.",
            ))]
        }
    })
    .await;
    let reads = InstanceTsql::new(lab.connection());
    let err = bounded(reads.full_backups(&[db("ToyStore")]))
        .await
        .unwrap_err();
    assert_eq!(err.kind, PortErrorKind::Sql(229));
    assert!(!err.transient);
    assert!(err.message.contains("backupset"), "{}", err.message);
    let err = bounded(reads.workload_activity(&[db("ToyStore")]))
        .await
        .unwrap_err();
    assert_eq!(err.kind, PortErrorKind::Sql(40613));
    assert!(err.transient, "{err:?}");
}

#[tokio::test]
async fn a_probe_with_two_result_sets_is_a_rowset_error() {
    let lab = Lab::start(|_| vec![recorded_backups(), recorded_backups()]).await;
    let reads = InstanceTsql::new(lab.connection());
    let err = bounded(reads.full_backups(&[db("ToyStore"), db("Customer360")]))
        .await
        .unwrap_err();
    assert_eq!(err.kind, PortErrorKind::Other(ROWSET_CODE.to_owned()));
    assert!(err.message.contains("2 result sets"), "{}", err.message);
}

#[tokio::test]
async fn the_decorator_sends_arm_calls_inward_and_reads_over_tsql() {
    let lab = instance_lab().await;
    let link = LinkName::new("tailspin-link").unwrap();
    let mut arm = MockManagedInstance::new();
    arm.expect_begin()
        .times(1)
        .returning(|_| Ok(ArmReply::Completed));
    arm.expect_poll()
        .times(1)
        .returning(|_| Ok(PollReply::Succeeded));
    arm.expect_link_state().times(1).returning(|_| {
        Ok(SideView {
            exists: false,
            ..SideView::unknown()
        })
    });
    arm.expect_full_backups().never();
    arm.expect_workload_activity().never();
    let port = WithInstanceTsql::new(arm, InstanceTsql::new(Arc::new(lab.connection())));

    assert_eq!(
        port.begin(&InstanceOp::GetEndpointCertificate)
            .await
            .unwrap(),
        ArmReply::Completed
    );
    let operation = OperationRef {
        url: "https://management.azure.com/operations/1".into(),
        kind: OperationKind::AzureAsyncOperation,
        resource: None,
    };
    assert_eq!(port.poll(&operation).await.unwrap(), PollReply::Succeeded);
    assert!(!port.link_state(&link).await.unwrap().exists);

    let backups = bounded(port.full_backups(&[db("ToyStore"), db("Customer360")]))
        .await
        .unwrap();
    assert_eq!(backups.len(), 2);
    let workload = bounded(port.workload_activity(&[db("ToyStore")]))
        .await
        .unwrap();
    assert!(workload.has_open_transactions());
    assert_eq!(lab.seen().len(), 2);
    assert!(!format!("{:?}", port.tsql()).contains(crate::sqlserver::testkit::PASSWORD));
}
