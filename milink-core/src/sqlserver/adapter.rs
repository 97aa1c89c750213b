//! [`SqlServerAdapter`]: the [`SourceServer`] port over a TDS [`Connection`] (feature `tds`).
//!
//! - **Operations.** [`SourceServer::execute`] renders the [`SourceOp`] into its batches
//!   ([`SourceOp::render`] with the adapter's [`RenderContext`]) and runs them in order, each
//!   with the op's [`CommandKind`] ([`command_kind`]: DDL for changes, probe for the public key
//!   read). An error SQL Server answers is typed through [`super::errors`]; an "already exists"
//!   answer counts as success only where the [`AlreadyExistsPolicy`] says it proves the op's
//!   goal, and the next batch runs. [`SourceOp::ExportCertificatePublicKey`] returns
//!   [`SourceReply::PublicKey`] with the DER bytes of its rowset.
//! - **Reads.** [`SourceServer::link_state`] sends the link's probes in one batch
//!   ([`link_state_batch`]) and builds the [`SideView`] from its result sets with
//!   [`super::parse`]; [`SourceServer::workload_activity`] sends the workload probe likewise.
//! - **Errors.** Everything comes back as a [`PortError`]: SQL Server's numbers as
//!   `sql:<number>` with the transient flag [`super::errors`] gives them, connection failures as
//!   the connection types them (`io`, `timeout`, `tls`, `sql:18456` …), and a rowset that does
//!   not have the shape its probe documents as a permanent [`ROWSET_CODE`] error. Nothing here
//!   panics on what the server sends.

use std::fmt;

use async_trait::async_trait;

use crate::lifecycle::{SideView, SourceOp};
use crate::names::{DatabaseName, LinkName};
use crate::ports::{PortError, PortErrorKind, SourceReply, SourceServer};
use crate::redirect::WorkloadActivity;
use crate::tsql::{self, Batch};

use super::connection::{CommandKind, Connection, ResultSet, SqlError as ConnectionError};
use super::errors::{self, AlreadyExistsPolicy, SqlError};
use super::parse::{self, ROWSET_CODE};
use super::render::RenderContext;

/// The [`PortError`] code of an op that could not be rendered (the adapter's configuration
/// lacks something the op needs, e.g. the root CA certificates).
pub const CONFIG_CODE: &str = "config";

/// How many result sets [`link_state_batch`] returns: the replica states, the database replica
/// states, the seeding operations and the instance properties, in that order.
pub const LINK_STATE_RESULT_SETS: usize = 4;

/// The [`SourceServer`] port on a real SQL Server, over one [`Connection`].
///
/// Calls are serialized by the connection; a connection that broke is opened again at the next
/// call. Its `Debug` shows the connection's options (never a password) and nothing of the
/// [`RenderContext`].
pub struct SqlServerAdapter {
    connection: Connection,
    render: RenderContext,
    policy: AlreadyExistsPolicy,
}

impl fmt::Debug for SqlServerAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlServerAdapter")
            .field("connection", &self.connection)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl SqlServerAdapter {
    /// An adapter that runs ops on `connection`, rendered with `render`, and judges "already
    /// exists" answers with the default [`AlreadyExistsPolicy`].
    pub fn new(connection: Connection, render: RenderContext) -> Self {
        SqlServerAdapter {
            connection,
            render,
            policy: AlreadyExistsPolicy::default(),
        }
    }

    /// The same adapter judging "already exists" answers with `policy`.
    pub fn with_already_exists_policy(mut self, policy: AlreadyExistsPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The connection it runs on (to connect early, or to close it).
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// The policy that decides which "already exists" answers count as success.
    pub fn already_exists_policy(&self) -> &AlreadyExistsPolicy {
        &self.policy
    }

    /// Sends `batch` as a query and returns its result sets, errors typed.
    async fn query(&self, batch: &Batch, kind: CommandKind) -> Result<Vec<ResultSet>, PortError> {
        tracing::debug!(purpose = batch.purpose(), ?kind, "SQL Server: query");
        self.connection
            .simple_query(batch.expose_sql(), kind)
            .await
            .map_err(port_error)
    }

    async fn export_public_key(
        &self,
        batch: &Batch,
        name: &crate::names::CertificateName,
    ) -> Result<SourceReply, PortError> {
        let sets = self.query(batch, CommandKind::Probe).await?;
        let set = exactly_one("export_certificate_public_key", &sets)?;
        match parse::public_key(&set.rows)? {
            Some(der) => Ok(SourceReply::PublicKey(der)),
            None => Err(SqlError::new(
                15151,
                format!(
                    "Cannot find the certificate '{name}' in master: CERTENCODED(CERT_ID(...)) \
                     returned NULL."
                ),
            )
            .to_port_error()),
        }
    }
}

/// The [`CommandKind`] of `op`'s batches: [`CommandKind::Probe`] for the public key read,
/// [`CommandKind::Ddl`] for every change (certificates, endpoint, AG and DAG DDL, failover).
pub fn command_kind(op: &SourceOp) -> CommandKind {
    match op {
        SourceOp::ExportCertificatePublicKey { .. } => CommandKind::Probe,
        SourceOp::EnsureMasterKey
        | SourceOp::EnsureEndpointCertificate { .. }
        | SourceOp::EnsureMirroringEndpoint { .. }
        | SourceOp::ImportInstanceCertificate { .. }
        | SourceOp::EnsureRootCaTrust
        | SourceOp::CreateAvailabilityGroup { .. }
        | SourceOp::GrantCreateAnyDatabase { .. }
        | SourceOp::CreateDistributedAvailabilityGroup { .. }
        | SourceOp::SetAvailabilityMode { .. }
        | SourceOp::Failover { .. }
        | SourceOp::ForceFailover { .. }
        | SourceOp::SetRoleSecondary { .. }
        | SourceOp::DropDistributedAvailabilityGroup { .. }
        | SourceOp::DropAvailabilityGroup { .. } => CommandKind::Ddl,
    }
}

/// The link's probes as one batch, one round trip: [`tsql::probe_replica_states`],
/// [`tsql::probe_database_replica_states`], [`tsql::probe_seeding_stats`] and
/// [`tsql::readiness::instance_properties`] (for the build), in that order, each giving one
/// result set ([`LINK_STATE_RESULT_SETS`]).
pub fn link_state_batch(link: &LinkName) -> Batch {
    let parts = [
        tsql::probe_replica_states(link),
        tsql::probe_database_replica_states(link),
        tsql::probe_seeding_stats(),
        tsql::readiness::instance_properties(),
    ];
    let sql: Vec<&str> = parts.iter().map(Batch::expose_sql).collect();
    Batch::new("read the link's state on SQL Server", sql.join("\n"))
}

/// SQL Server's [`SideView`] of the link from the result sets of [`link_state_batch`], with
/// `databases` first (see [`parse::source_side_view`]). Another number of result sets, or a
/// rowset that does not fit its probe, is a permanent [`ROWSET_CODE`] error.
pub fn side_view_from_result_sets(
    databases: &[DatabaseName],
    sets: &[ResultSet],
) -> Result<SideView, PortError> {
    let [replicas, states, seeding, properties] = sets else {
        return Err(rowset_error(format!(
            "the link's probes returned {} result sets, expected {LINK_STATE_RESULT_SETS} \
             (replica states, database replica states, seeding, instance properties)",
            sets.len()
        )));
    };
    let version = parse::product_version(&properties.rows)?;
    Ok(parse::parse_source_side_view(
        databases,
        &replicas.rows,
        &states.rows,
        &seeding.rows,
        Some(version),
    )?)
}

/// The one result set of a one-result-set probe.
fn exactly_one<'a>(probe: &str, sets: &'a [ResultSet]) -> Result<&'a ResultSet, PortError> {
    match sets {
        [set] => Ok(set),
        _ => Err(rowset_error(format!(
            "{probe} returned {} result sets, expected 1",
            sets.len()
        ))),
    }
}

fn rowset_error(detail: String) -> PortError {
    PortError::permanent(
        PortErrorKind::Other(ROWSET_CODE.to_owned()),
        format!("SQL Server answered a probe with an unexpected rowset: {detail}"),
    )
}

/// A statement's failure as the port sees it: SQL Server's numbers typed by
/// [`super::errors`] (cause, fix, transient flag), the rest as the connection types them.
pub(crate) fn port_error(error: ConnectionError) -> PortError {
    match error {
        ConnectionError::Server {
            number, message, ..
        } => SqlError::new(number, message).to_port_error(),
        other => PortError::from(other),
    }
}

#[async_trait]
impl SourceServer for SqlServerAdapter {
    async fn execute(&self, op: &SourceOp) -> Result<SourceReply, PortError> {
        let batches = op.render(&self.render).map_err(|e| {
            PortError::permanent(PortErrorKind::Other(CONFIG_CODE.to_owned()), e.to_string())
        })?;
        if let SourceOp::ExportCertificatePublicKey { name } = op {
            let [batch] = batches.as_slice() else {
                return Err(PortError::permanent(
                    PortErrorKind::Other(CONFIG_CODE.to_owned()),
                    format!(
                        "the public key export rendered {} batches, expected 1",
                        batches.len()
                    ),
                ));
            };
            return self.export_public_key(batch, name).await;
        }
        let kind = command_kind(op);
        for batch in &batches {
            tracing::debug!(purpose = batch.purpose(), ?kind, "SQL Server: execute");
            match self.connection.execute(batch.expose_sql(), kind).await {
                Ok(()) => {}
                Err(ConnectionError::Server {
                    number, message, ..
                }) => {
                    errors::judge(&self.policy, op, number, &message)?;
                    tracing::debug!(
                        purpose = batch.purpose(),
                        number,
                        "SQL Server: the object already exists, which is the goal"
                    );
                }
                Err(other) => return Err(port_error(other)),
            }
        }
        Ok(SourceReply::Done)
    }

    async fn link_state(
        &self,
        link: &LinkName,
        databases: &[DatabaseName],
    ) -> Result<SideView, PortError> {
        let sets = self
            .query(&link_state_batch(link), CommandKind::Probe)
            .await?;
        side_view_from_result_sets(databases, &sets)
    }

    async fn workload_activity(
        &self,
        databases: &[DatabaseName],
    ) -> Result<WorkloadActivity, PortError> {
        let sets = self
            .query(
                &tsql::probe_workload_activity(databases),
                CommandKind::Probe,
            )
            .await?;
        let set = exactly_one("probe_workload_activity", &sets)?;
        Ok(parse::workload_activity(&set.rows)?)
    }

    fn connection_warnings(&self) -> Vec<String> {
        let options = self.connection.options();
        if options.trusts_server_certificate() {
            vec![format!(
                "SQL Server's TLS certificate is not verified (TrustServerCertificate was asked \
                 for): anyone on the path to {} can pose as the server. Trust its certificate \
                 or CA instead (TrustedCa / ConnectOptions::trusted_ca).",
                options.host()
            )]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(all(test, feature = "sim"))]
mod loopback;
