//! The managed instance's own T-SQL reads (feature `tds`): what only a connection to the
//! instance's endpoint can tell, and [`WithInstanceTsql`], which adds them to a
//! [`ManagedInstance`] port that speaks only ARM.
//!
//! - [`InstanceTsql::full_backups`] sends [`tsql::probe_first_full_backups`] (the link must not
//!   be dropped before the instance has taken the first full backup of each database,
//!   milink-facts §4.4) and parses it with [`parse::full_backups`]. The probe documents one row
//!   per requested database, in order; a rowset with other databases is refused.
//! - [`InstanceTsql::workload_activity`] sends [`tsql::probe_workload_activity`] (client
//!   sessions and open transactions, the check before failing back) and parses it with
//!   [`parse::workload_activity`].
//! - [`InstanceTsql::link_state`] sends [`tsql::probe_instance_link_state`] (the link's DMVs
//!   and the update type, three result sets) and parses it with
//!   [`parse::parse_instance_side_view`].
//!
//! Both run as [`CommandKind::Probe`], one round trip each, and none for an empty list of
//! databases. Errors are [`PortError`]s as the SQL Server adapter types them: SQL Server's
//! numbers as `sql:<number>` with cause, fix and transient flag, connection failures as the
//! connection types them, and a rowset of another shape as a permanent
//! [`ROWSET_CODE`] error.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::lifecycle::{FullBackup, InstanceOp, LinkName, OperationRef, SideView};
use crate::names::{DatabaseName, UpdatePolicy};
use crate::ports::{ArmReply, ManagedInstance, PollReply, PortError, PortErrorKind};
use crate::redirect::WorkloadActivity;
use crate::tsql::{self, Batch};

use super::adapter::port_error;
use super::connection::{CommandKind, Connection, ResultSet};
use super::parse::{self, ROWSET_CODE};

/// T-SQL reads on the managed instance, over a [`Connection`] to its endpoint.
///
/// `C` is the connection or a handle to it (`Connection`, `&Connection`, `Arc<Connection>`).
pub struct InstanceTsql<C = Connection> {
    connection: C,
}

impl<C: Borrow<Connection>> fmt::Debug for InstanceTsql<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstanceTsql")
            .field("connection", self.connection.borrow())
            .finish()
    }
}

impl<C: Borrow<Connection> + Send + Sync> InstanceTsql<C> {
    /// Reads sent on `connection`, a connection to the instance's endpoint.
    pub fn new(connection: C) -> Self {
        InstanceTsql { connection }
    }

    /// The connection it reads on.
    pub fn connection(&self) -> &Connection {
        self.connection.borrow()
    }

    /// The latest full backup of each of `databases` (`finished` is `None` for a database the
    /// instance has not backed up yet), in the order given.
    pub async fn full_backups(
        &self,
        databases: &[DatabaseName],
    ) -> Result<Vec<FullBackup>, PortError> {
        if databases.is_empty() {
            return Ok(Vec::new());
        }
        let set = self
            .one_result_set(
                "probe_first_full_backups",
                &tsql::probe_first_full_backups(databases),
            )
            .await?;
        let backups = parse::full_backups(&set.rows)?;
        let names: Vec<&DatabaseName> = backups.iter().map(|b| &b.database).collect();
        if names.len() != databases.len() || names.iter().zip(databases).any(|(a, b)| *a != b) {
            return Err(rowset_error(format!(
                "probe_first_full_backups answered for {} databases ({}), expected one row for \
                 each of {} ({}), in that order",
                names.len(),
                join(names.iter().copied()),
                databases.len(),
                join(databases.iter()),
            )));
        }
        Ok(backups)
    }

    /// Client sessions and open transactions on `databases`.
    pub async fn workload_activity(
        &self,
        databases: &[DatabaseName],
    ) -> Result<WorkloadActivity, PortError> {
        if databases.is_empty() {
            return Ok(WorkloadActivity::default());
        }
        let set = self
            .one_result_set(
                "probe_workload_activity",
                &tsql::probe_workload_activity(databases),
            )
            .await?;
        Ok(parse::workload_activity(&set.rows)?)
    }

    /// The link as the instance's own DMVs show it now ([`tsql::probe_instance_link_state`],
    /// one round trip), with `databases` first and [`SideView::live`] set when the
    /// distributed availability group exists; and what the instance's update type tells of its
    /// policy (`Continuous`: Always-up-to-date).
    pub async fn link_state(
        &self,
        link: &LinkName,
        databases: &[DatabaseName],
    ) -> Result<(SideView, Option<UpdatePolicy>), PortError> {
        let batch = tsql::probe_instance_link_state(link);
        tracing::debug!(purpose = batch.purpose(), "managed instance: T-SQL read");
        let sets = self
            .connection
            .borrow()
            .simple_query(batch.expose_sql(), CommandKind::Probe)
            .await
            .map_err(port_error)?;
        let [replicas, states, update_type] = sets.as_slice() else {
            return Err(rowset_error(format!(
                "probe_instance_link_state returned {} result sets, expected 3 (replica \
                 states, database replica states, update type)",
                sets.len()
            )));
        };
        Ok(parse::parse_instance_side_view(
            databases,
            &replicas.rows,
            &states.rows,
            &update_type.rows,
        )?)
    }

    async fn one_result_set(&self, probe: &str, batch: &Batch) -> Result<ResultSet, PortError> {
        tracing::debug!(purpose = batch.purpose(), "managed instance: T-SQL read");
        let mut sets = self
            .connection
            .borrow()
            .simple_query(batch.expose_sql(), CommandKind::Probe)
            .await
            .map_err(port_error)?;
        match sets.len() {
            1 => Ok(sets.remove(0)),
            n => Err(rowset_error(format!(
                "{probe} returned {n} result sets, expected 1"
            ))),
        }
    }
}

fn join<'a>(names: impl Iterator<Item = &'a DatabaseName>) -> String {
    names
        .map(DatabaseName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn rowset_error(detail: String) -> PortError {
    PortError::permanent(
        PortErrorKind::Other(ROWSET_CODE.to_owned()),
        format!("the managed instance answered a probe with an unexpected rowset: {detail}"),
    )
}

/// A [`ManagedInstance`] port whose ARM calls (`begin`, `poll`) go to the inner port `M`, whose
/// T-SQL reads (`full_backups`, `workload_activity`) go to the instance's endpoint through
/// [`InstanceTsql`], and whose `link_state` reads both and merges them (ARM's view, then the
/// instance's DMVs, live: [`SideView::merged_with_live`]).
///
/// Use it when the user gives the instance's endpoint: an ARM-only port cannot read
/// `msdb.dbo.backupset` or the instance's sessions, and its view of the link lags.
pub struct WithInstanceTsql<M, C = Connection> {
    arm: M,
    tsql: InstanceTsql<C>,
    /// ARM's last view of a link, what [`ManagedInstance::link_state_live`] keeps of ARM.
    last_arm: Mutex<Option<(LinkName, SideView)>>,
}

impl<M: fmt::Debug, C: Borrow<Connection>> fmt::Debug for WithInstanceTsql<M, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithInstanceTsql")
            .field("arm", &self.arm)
            .field("tsql", &self.tsql)
            .finish()
    }
}

impl<M: ManagedInstance, C: Borrow<Connection> + Send + Sync> WithInstanceTsql<M, C> {
    /// `arm` for ARM, `tsql` for the T-SQL reads.
    pub fn new(arm: M, tsql: InstanceTsql<C>) -> Self {
        WithInstanceTsql {
            arm,
            tsql,
            last_arm: Mutex::new(None),
        }
    }

    /// The inner ARM port.
    pub fn arm(&self) -> &M {
        &self.arm
    }

    /// The T-SQL reads.
    pub fn tsql(&self) -> &InstanceTsql<C> {
        &self.tsql
    }
}

#[async_trait]
impl<M: ManagedInstance, C: Borrow<Connection> + Send + Sync> ManagedInstance
    for WithInstanceTsql<M, C>
{
    async fn begin(&self, op: &InstanceOp) -> Result<ArmReply, PortError> {
        self.arm.begin(op).await
    }

    async fn poll(&self, operation: &OperationRef) -> Result<PollReply, PortError> {
        self.arm.poll(operation).await
    }

    /// ARM's view of the link, then the instance's DMVs over T-SQL, merged
    /// ([`SideView::merged_with_live`]): the role, modes, connection and LSNs as they are now,
    /// what only ARM knows from ARM. A T-SQL read that fails leaves ARM's view (not live; the
    /// catch-up gate then waits the longer window), and says why in the log.
    async fn link_state(&self, link: &LinkName) -> Result<SideView, PortError> {
        let arm = self.arm.link_state(link).await?;
        *self.last_arm.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((link.clone(), arm.clone()));
        self.merge_live(link, arm).await
    }

    /// The DMVs alone, merged onto ARM's last view of `link`; without one, or when the DMVs
    /// cannot be read, a whole reading.
    async fn link_state_live(&self, link: &LinkName) -> Result<SideView, PortError> {
        let last = self
            .last_arm
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|(l, arm)| l == link && arm.exists);
        let Some((_, arm)) = last else {
            return self.link_state(link).await;
        };
        let names: Vec<DatabaseName> = arm.databases.iter().map(|d| d.name.clone()).collect();
        match self.tsql.link_state(link, &names).await {
            Ok((live, policy)) => Ok(arm.merged_with_live(live, policy)),
            Err(_) => self.link_state(link).await,
        }
    }

    async fn full_backups(&self, databases: &[DatabaseName]) -> Result<Vec<FullBackup>, PortError> {
        self.tsql.full_backups(databases).await
    }

    async fn instance_fqdn(&self) -> Result<Option<crate::names::MiFqdn>, PortError> {
        self.arm.instance_fqdn().await
    }

    async fn workload_activity(
        &self,
        databases: &[DatabaseName],
    ) -> Result<WorkloadActivity, PortError> {
        self.tsql.workload_activity(databases).await
    }
}

impl<M: ManagedInstance, C: Borrow<Connection> + Send + Sync> WithInstanceTsql<M, C> {
    /// ARM's view `arm` of `link` with the instance's DMVs merged in; ARM's view alone (not
    /// live) when the DMVs cannot be read, with a warning.
    async fn merge_live(&self, link: &LinkName, arm: SideView) -> Result<SideView, PortError> {
        if !arm.exists {
            return Ok(arm);
        }
        let names: Vec<DatabaseName> = arm.databases.iter().map(|d| d.name.clone()).collect();
        match self.tsql.link_state(link, &names).await {
            Ok((live, policy)) => Ok(arm.merged_with_live(live, policy)),
            Err(e) => {
                tracing::warn!(
                    code = %e.code(),
                    error = %e.message,
                    "managed instance: the link's DMVs could not be read over T-SQL; using \
                     ARM's view, which lags"
                );
                Ok(arm)
            }
        }
    }
}

#[cfg(all(test, feature = "sim"))]
mod tests;
