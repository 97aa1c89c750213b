//! `--wire`: the lab's SQL Server half over TDS.
//!
//! In-process, the session calls the simulated SQL Server directly. Over the wire it calls the
//! real adapter ([`SqlServerAdapter`]): every op is rendered to T-SQL, sent by tiberius over TLS
//! to a loopback TDS server ([`TdsServer`]) and parsed there by the simulator's own T-SQL
//! handler ([`SimSqlHandler`]), which answers from the same world. The managed instance's T-SQL
//! reads (its first full backups, its client sessions) take a second connection to the
//! simulated instance's T-SQL endpoint, and its ARM half goes through the real ARM adapter
//! ([`ArmManagedInstance`]) over HTTPS to the simulator's REST API ([`ArmHttpsServer`]).
//!
//! Virtual time meets real sockets in the session's clock, a
//! [`WireClock`](milink_core::sim::wire::WireClock): the ports count their calls on the wire
//! ([`InFlight`]) and the clock's jumps wait for them.

use std::error::Error;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use milink_core::arc::client::ArcSqlServer;
use milink_core::arc::source::ArcSourceServer;
use milink_core::arc::{ArcInstanceId, ArcOp};
use milink_core::arm::client::{ArmManagedInstance, ArmOptions};
use milink_core::lifecycle::{
    FullBackup, InstanceOp, LinkName, OperationRef, Side, SideView, SourceOp,
};
use milink_core::names::InstanceId;
use milink_core::names::{DatabaseName, SqlVersion};
use milink_core::ports::{
    ArmReply, ManagedInstance, PollReply, PortError, SourceReply, SourceServer,
};
use milink_core::redirect::WorkloadActivity;
use milink_core::secret::Secret;
use milink_core::sim::arm_https::{
    ArmHttpsServer, ArmServerConfig, RequestCounter, RequestCounts, difference,
};
use milink_core::sim::sql::handler::SimSqlHandler;
use milink_core::sim::tds::{TdsServer, TdsServerConfig};
use milink_core::sim::wire::InFlight;
use milink_core::sim::{Sim, SimManagedInstance, SimSqlServer};
use milink_core::sqlserver::SqlServerAdapter;
use milink_core::sqlserver::connection::{CommandKind, ConnectOptions, Connection, Encryption};
use milink_core::sqlserver::instance_reads::{InstanceTsql, WithInstanceTsql};
use milink_core::sqlserver::render::RenderContext;
use milink_core::time::SystemTimer;
use milink_core::time::Timer;

use super::report::PhaseRequests;
use crate::config::StaticToken;

/// The login the simulated servers accept over the wire.
pub(crate) const USER: &str = "milink";

/// The tallies of what the lab sent over the wire (all empty in process).
#[derive(Debug, Clone, Default)]
pub struct WireCounters {
    arm: Option<RequestCounter>,
    tds_sql_server: Option<Arc<AtomicU64>>,
    tds_managed_instance: Option<Arc<AtomicU64>>,
}

/// A reading of [`WireCounters`].
#[derive(Debug, Clone, Default)]
pub struct WireSnapshot {
    arm: RequestCounts,
    tds_sql_server: u64,
    tds_managed_instance: u64,
}

impl WireCounters {
    /// The tallies of the lab's two ports.
    pub fn of(source: &Option<Arc<AtomicU64>>, instance: &LabInstance) -> WireCounters {
        let (arm, tds_mi) = instance.counters().unzip();
        WireCounters {
            arm,
            tds_sql_server: source.clone(),
            tds_managed_instance: tds_mi,
        }
    }

    /// The counts so far.
    pub fn snapshot(&self) -> WireSnapshot {
        let read = |c: &Option<Arc<AtomicU64>>| c.as_ref().map_or(0, |c| c.load(Ordering::Relaxed));
        WireSnapshot {
            arm: self
                .arm
                .as_ref()
                .map(RequestCounter::snapshot)
                .unwrap_or_default(),
            tds_sql_server: read(&self.tds_sql_server),
            tds_managed_instance: read(&self.tds_managed_instance),
        }
    }

    /// What `phase` sent since `before`; `None` in process.
    pub fn since(&self, before: &WireSnapshot, phase: &str) -> Option<PhaseRequests> {
        self.arm.as_ref()?;
        let now = self.snapshot();
        Some(PhaseRequests {
            phase: phase.to_owned(),
            arm: difference(&now.arm, &before.arm),
            tds_sql_server: now.tds_sql_server.saturating_sub(before.tds_sql_server),
            tds_managed_instance: now
                .tds_managed_instance
                .saturating_sub(before.tds_managed_instance),
        })
    }
}

/// The lab's SQL Server port: the simulator in process, or the real adapter over TDS.
pub enum LabSource {
    /// The simulated SQL Server, called directly.
    InProcess(SimSqlServer),
    /// The real adapter, over TDS to the simulator's T-SQL handler.
    Wire(Box<WireSource>),
    /// The Arc route (`--route arc`): the real Arc client over HTTPS to the simulator's Azure.
    Arc(Box<ArcSource>),
}

/// The Arc route's port and the simulated Azure it talks to.
pub struct ArcSource {
    port: ArcSourceServer,
    in_flight: Arc<InFlight>,
    /// The simulated Azure (`Microsoft.AzureArcData` and `Microsoft.Sql`) on loopback.
    server: ArmHttpsServer,
}

/// The bearer token of the lab's Arc route (the simulated Azure's own; not a secret of any real
/// service).
const ARC_LAB_TOKEN: &str = "tailspin-arc-route-token";

impl ArcSource {
    /// An Arc client to the same simulated Azure (for the assessment through Arc).
    pub fn client(&self, timer: Arc<dyn Timer>) -> Result<ArcSqlServer, Box<dyn Error>> {
        let arc = self.port.client();
        let options = ArmOptions::builder()
            .endpoint(self.server.base_url())
            .trust_root_der(self.server.certificate_der().to_vec())
            .build();
        let counter = Arc::clone(&self.in_flight);
        Ok(ArcSqlServer::with_timer(
            arc.instance_id().clone(),
            arc.managed_instance().instance().clone(),
            Arc::new(StaticToken::new(ARC_LAB_TOKEN.into())),
            options,
            timer,
        )?
        .on_the_wire(Arc::new(move || Box::new(counter.enter()))))
    }
}

/// The real adapter and the loopback server it talks to.
pub struct WireSource {
    adapter: SqlServerAdapter,
    /// The build read over the wire, checked to host the link.
    version: SqlVersion,
    in_flight: Arc<InFlight>,
    /// Kept alive for as long as the adapter needs it.
    server: TdsServer,
}

/// The secrets of a `--wire` run: the SQL logins' passwords of both TDS servers, the ARM bearer
/// token and the master key password (`None`: the adapter generates one). Each run generates
/// its own; a test passes recognizable ones to prove none of them leaks.
#[derive(Debug, Clone)]
pub struct LabSecrets {
    /// SQL Server's `milink` login.
    pub sql_password: Secret,
    /// The managed instance's T-SQL login.
    pub mi_password: Secret,
    /// The ARM bearer token.
    pub arm_token: Secret,
    /// The master key password, if given.
    pub master_key_password: Option<Secret>,
}

impl LabSecrets {
    /// Fresh random secrets from the OS's CSPRNG (the master key password left to the adapter).
    pub fn generate() -> Result<LabSecrets, Box<dyn Error>> {
        Ok(LabSecrets {
            sql_password: milink_core::sqlserver::password::generate()?,
            mi_password: milink_core::sqlserver::password::generate()?,
            arm_token: milink_core::sqlserver::password::generate()?,
            master_key_password: None,
        })
    }
}

impl LabSource {
    /// The in-process port, or (with `wire`) a loopback TDS server over `sim` and the real
    /// adapter connected to it, logging in with `secrets`. The server's certificate is written
    /// into `dir` for the client to trust.
    pub async fn start(
        sim: &Sim,
        wire: bool,
        dir: &Path,
        in_flight: &Arc<InFlight>,
        secrets: &LabSecrets,
    ) -> Result<LabSource, Box<dyn Error>> {
        if !wire {
            return Ok(LabSource::InProcess(sim.sql_server()));
        }
        let (server, options) = serve(
            sim,
            Side::SqlServer,
            &secrets.sql_password,
            dir,
            "sql-server",
        )
        .await?;
        let connection = Connection::new(options, Arc::new(SystemTimer));
        let adapter = SqlServerAdapter::new(
            connection,
            RenderContext::with_password(secrets.master_key_password.clone())?,
        );
        // Before anything is prepared: a build that cannot host the link is refused here, with
        // the update to install, and nothing has changed.
        let version = adapter.check_can_host_link().await?;
        Ok(LabSource::Wire(Box::new(WireSource {
            version,
            adapter,
            in_flight: Arc::clone(in_flight),
            server,
        })))
    }
}

impl LabSource {
    /// The Arc route's port: the simulated Azure served on loopback HTTPS, and the real Arc
    /// client for `instance` (the lab's Arc-enabled SQL Server) over it, waiting on `timer`.
    pub async fn start_arc(
        sim: &Sim,
        in_flight: &Arc<InFlight>,
        instance: ArcInstanceId,
        managed_instance: &InstanceId,
        timer: Arc<dyn Timer>,
    ) -> Result<LabSource, Box<dyn Error>> {
        let server =
            ArmHttpsServer::start(ArmServerConfig::with_token(ARC_LAB_TOKEN), sim.clone()).await?;
        let options = ArmOptions::builder()
            .endpoint(server.base_url())
            .trust_root_der(server.certificate_der().to_vec())
            .build();
        let counter = Arc::clone(in_flight);
        let arc = ArcSqlServer::with_timer(
            instance,
            managed_instance.clone(),
            Arc::new(StaticToken::new(ARC_LAB_TOKEN.into())),
            options,
            timer,
        )?
        .on_the_wire(Arc::new(move || Box::new(counter.enter())));
        Ok(LabSource::Arc(Box::new(ArcSource {
            port: ArcSourceServer::new(arc),
            in_flight: Arc::clone(in_flight),
            server,
        })))
    }

    /// The Arc route's source, if this is it.
    pub fn arc(&self) -> Option<&ArcSource> {
        match self {
            LabSource::Arc(a) => Some(a),
            LabSource::InProcess(_) | LabSource::Wire(_) => None,
        }
    }

    /// The TDS server's tally of batches, over the wire.
    pub fn batch_counter(&self) -> Option<Arc<AtomicU64>> {
        match self {
            LabSource::InProcess(_) | LabSource::Arc(_) => None,
            LabSource::Wire(w) => Some(w.server.batch_counter()),
        }
    }

    /// How SQL Server is reached, for the narration.
    pub fn describe(&self) -> String {
        match self {
            LabSource::InProcess(_) => "sql server: simulated, called in process".to_owned(),
            LabSource::Arc(a) => format!(
                "sql server: simulated, reached through Azure Arc: the real Arc client over HTTPS \
                 at {} (Microsoft.AzureArcData), no T-SQL",
                a.server.base_url()
            ),
            LabSource::Wire(w) => format!(
                "sql server: simulated, over TDS at {} (TLS, the server's certificate trusted \
                 from a file), through the real adapter; build {} can host the link",
                w.server.addr(),
                w.version
            ),
        }
    }
}

/// Starts a TDS server answering as `side` of `sim`, and the options that reach it: the SQL
/// login, Mandatory encryption with the server's certificate trusted from a file in `dir`.
pub async fn serve(
    sim: &Sim,
    side: Side,
    password: &Secret,
    dir: &Path,
    name: &str,
) -> Result<(TdsServer, ConnectOptions), Box<dyn Error>> {
    let handler = Arc::new(SimSqlHandler::new(
        sim.clone(),
        side,
        USER,
        password.clone(),
    ));
    let server = TdsServer::start(TdsServerConfig::default(), handler).await?;
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the directory {}: {e}", dir.display()))?;
    let ca = dir.join(format!("{name}-{}.der", server.addr().port()));
    std::fs::write(&ca, server.certificate_der())
        .map_err(|e| format!("cannot write the {name} certificate {}: {e}", ca.display()))?;
    let options = ConnectOptions::builder("127.0.0.1")
        .port(server.addr().port())
        .sql_login(USER, password.clone())
        .encryption(Encryption::Mandatory)
        .trusted_ca(ca)
        .application_name("milink tailspin --wire")
        .login_timeout(Duration::from_secs(30))
        .command_timeout(CommandKind::Probe, Duration::from_secs(30))
        .command_timeout(CommandKind::Ddl, Duration::from_secs(120))
        .build()?;
    Ok((server, options))
}

#[async_trait]
impl SourceServer for LabSource {
    async fn execute(&self, op: &SourceOp) -> Result<SourceReply, PortError> {
        match self {
            LabSource::InProcess(s) => s.execute(op).await,
            LabSource::Wire(w) => {
                let _call = w.in_flight.enter();
                w.adapter.execute(op).await
            }
            LabSource::Arc(a) => a.port.execute(op).await,
        }
    }

    async fn arc_begin(&self, op: &ArcOp) -> Result<ArmReply, PortError> {
        match self {
            LabSource::InProcess(s) => s.arc_begin(op).await,
            LabSource::Wire(w) => w.adapter.arc_begin(op).await,
            LabSource::Arc(a) => a.port.arc_begin(op).await,
        }
    }

    async fn arc_poll(&self, op: &ArcOp, operation: &OperationRef) -> Result<PollReply, PortError> {
        match self {
            LabSource::InProcess(s) => s.arc_poll(op, operation).await,
            LabSource::Wire(w) => w.adapter.arc_poll(op, operation).await,
            LabSource::Arc(a) => a.port.arc_poll(op, operation).await,
        }
    }

    async fn link_state(
        &self,
        link: &LinkName,
        databases: &[DatabaseName],
    ) -> Result<SideView, PortError> {
        match self {
            LabSource::InProcess(s) => s.link_state(link, databases).await,
            LabSource::Wire(w) => {
                let _call = w.in_flight.enter();
                w.adapter.link_state(link, databases).await
            }
            LabSource::Arc(a) => a.port.link_state(link, databases).await,
        }
    }

    async fn workload_activity(
        &self,
        databases: &[DatabaseName],
    ) -> Result<WorkloadActivity, PortError> {
        match self {
            LabSource::InProcess(s) => s.workload_activity(databases).await,
            LabSource::Wire(w) => {
                let _call = w.in_flight.enter();
                w.adapter.workload_activity(databases).await
            }
            LabSource::Arc(a) => a.port.workload_activity(databases).await,
        }
    }

    fn connection_warnings(&self) -> Vec<String> {
        match self {
            LabSource::InProcess(s) => s.connection_warnings(),
            LabSource::Wire(w) => w.adapter.connection_warnings(),
            LabSource::Arc(a) => a.port.connection_warnings(),
        }
    }
}

/// The lab's managed instance port: ARM in process, and its T-SQL reads (first full backups,
/// client sessions) either in process too or (with `--wire`) over TDS to the simulated
/// instance's T-SQL endpoint.
pub enum LabInstance {
    /// Everything in process.
    InProcess(SimManagedInstance),
    /// The T-SQL reads over TDS.
    Wire(Box<WireInstance>),
}

/// The instance's ARM port over HTTPS with its T-SQL reads over TDS, and the servers they
/// reach.
///
/// Its ARM calls start only once no call is on the wire: the session may probe both sides at
/// once, and the world must see the calls in the order the session made them (in process the
/// SQL Server probe, polled first, has finished before the instance's starts), or their virtual
/// latencies are drawn in another order and the run differs.
pub struct WireInstance {
    port: WithInstanceTsql<ArmManagedInstance>,
    in_flight: Arc<InFlight>,
    /// The instance's T-SQL endpoint, kept alive for as long as the port needs it.
    server: TdsServer,
    /// The instance's REST API.
    arm: ArmHttpsServer,
}

impl LabInstance {
    /// The in-process port, or (with `wire`) the real ARM adapter over HTTPS to the simulated
    /// REST API, with the T-SQL reads over a loopback TDS server answering as the managed
    /// instance's endpoint. ARM retry waits go through `timer`; `secrets` holds the login and
    /// the token.
    pub async fn start(
        sim: &Sim,
        wire: bool,
        dir: &Path,
        in_flight: &Arc<InFlight>,
        instance: &InstanceId,
        timer: Arc<dyn Timer>,
        secrets: &LabSecrets,
    ) -> Result<LabInstance, Box<dyn Error>> {
        if !wire {
            return Ok(LabInstance::InProcess(sim.managed_instance()));
        }
        let (server, options) = serve(
            sim,
            Side::ManagedInstance,
            &secrets.mi_password,
            dir,
            "managed-instance",
        )
        .await?;
        let connection = Connection::new(options, Arc::new(SystemTimer));
        let token = secrets.arm_token.clone();
        let arm =
            ArmHttpsServer::start(ArmServerConfig::with_token(token.clone()), sim.clone()).await?;
        let arm_options = ArmOptions::builder()
            .endpoint(arm.base_url())
            .trust_root_der(arm.certificate_der().to_vec())
            .build();
        let counter = Arc::clone(in_flight);
        let client = ArmManagedInstance::with_timer(
            instance.clone(),
            Arc::new(StaticToken::new(token)),
            arm_options,
            timer,
        )?
        .on_the_wire(Arc::new(move || Box::new(counter.enter())));
        let port = WithInstanceTsql::new(client, InstanceTsql::new(connection));
        Ok(LabInstance::Wire(Box::new(WireInstance {
            port,
            in_flight: Arc::clone(in_flight),
            server,
            arm,
        })))
    }

    /// The REST API's tally of requests and the T-SQL endpoint's of batches, over the wire.
    pub fn counters(&self) -> Option<(RequestCounter, Arc<AtomicU64>)> {
        match self {
            LabInstance::InProcess(_) => None,
            LabInstance::Wire(w) => Some((w.arm.request_counter(), w.server.batch_counter())),
        }
    }

    /// How the instance's T-SQL endpoint is reached, for the narration.
    pub fn describe(&self) -> String {
        match self {
            LabInstance::InProcess(_) => {
                "managed instance: simulated, ARM and T-SQL called in process".to_owned()
            }
            LabInstance::Wire(w) => format!(
                "managed instance: simulated, ARM over HTTPS at {} through the real ARM adapter, \
                 its T-SQL endpoint over TDS at {}",
                w.arm.base_url(),
                w.server.addr()
            ),
        }
    }
}

#[async_trait]
impl ManagedInstance for LabInstance {
    async fn begin(&self, op: &InstanceOp) -> Result<ArmReply, PortError> {
        match self {
            LabInstance::InProcess(m) => m.begin(op).await,
            LabInstance::Wire(w) => {
                w.in_flight.idle().await;
                w.port.begin(op).await
            }
        }
    }

    async fn poll(&self, operation: &OperationRef) -> Result<PollReply, PortError> {
        match self {
            LabInstance::InProcess(m) => m.poll(operation).await,
            LabInstance::Wire(w) => {
                w.in_flight.idle().await;
                w.port.poll(operation).await
            }
        }
    }

    async fn link_state(&self, link: &LinkName) -> Result<SideView, PortError> {
        match self {
            LabInstance::InProcess(m) => m.link_state(link).await,
            LabInstance::Wire(w) => {
                w.in_flight.idle().await;
                // ARM's reads, then the T-SQL read on the instance's endpoint: one call.
                let _call = w.in_flight.enter();
                w.port.link_state(link).await
            }
        }
    }

    async fn link_state_live(&self, link: &LinkName) -> Result<SideView, PortError> {
        match self {
            LabInstance::InProcess(m) => m.link_state_live(link).await,
            LabInstance::Wire(w) => {
                w.in_flight.idle().await;
                let _call = w.in_flight.enter();
                w.port.link_state_live(link).await
            }
        }
    }

    async fn full_backups(&self, databases: &[DatabaseName]) -> Result<Vec<FullBackup>, PortError> {
        match self {
            LabInstance::InProcess(m) => m.full_backups(databases).await,
            LabInstance::Wire(w) => {
                let _call = w.in_flight.enter();
                w.port.full_backups(databases).await
            }
        }
    }

    async fn workload_activity(
        &self,
        databases: &[DatabaseName],
    ) -> Result<WorkloadActivity, PortError> {
        match self {
            LabInstance::InProcess(m) => m.workload_activity(databases).await,
            LabInstance::Wire(w) => {
                let _call = w.in_flight.enter();
                w.port.workload_activity(databases).await
            }
        }
    }

    async fn instance_fqdn(&self) -> Result<Option<milink_core::names::MiFqdn>, PortError> {
        match self {
            LabInstance::InProcess(m) => m.instance_fqdn().await,
            LabInstance::Wire(w) => {
                w.in_flight.idle().await;
                w.port.instance_fqdn().await
            }
        }
    }
}
