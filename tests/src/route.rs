//! The same end-to-end tests on both of a link's routes ([`LinkRoute`]): SQL Server's side in
//! process over the simulator's T-SQL (direct), or through Azure Arc with the real
//! [`ArcSqlServer`] over loopback HTTPS to the simulator's Azure face, on the same world (Arc).
//! The managed instance stays in process on both.

use std::sync::Arc;

use async_trait::async_trait;
use milink_core::arc::ArcOp;
use milink_core::arc::client::ArcSqlServer;
use milink_core::arc::source::ArcSourceServer;
use milink_core::arm::client::{ArmOptions, StaticToken};
use milink_core::lifecycle::{LinkName, LinkRoute, OperationRef, SideView, SourceOp};
use milink_core::names::DatabaseName;
use milink_core::ports::{ArmReply, Journal, PollReply, PortError, SourceReply, SourceServer};
use milink_core::redirect::WorkloadActivity;
use milink_core::sim::arm_https::{ArmHttpsServer, ArmServerConfig};
use milink_core::sim::wire::{InFlight, WireClock};
use milink_core::sim::{Lab, SimManagedInstance, SimSqlServer, WorkloadRedirect};
use milink_core::time::Timer;
use milink_core::{Session, SessionError, SessionOptions};

/// Which route a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// T-SQL, in process.
    Direct,
    /// Azure Arc over loopback HTTPS.
    Arc,
}

/// Both routes, for tests that run on each.
pub const ROUTES: [Route; 2] = [Route::Direct, Route::Arc];

const TOKEN: &str = "milink-tests-arc-token";

/// SQL Server's port on either route.
pub enum RouteSource {
    /// The simulator's T-SQL port.
    Direct(SimSqlServer),
    /// The Arc port over HTTPS.
    Arc(Box<ArcSourceServer>),
}

#[async_trait]
impl SourceServer for RouteSource {
    async fn execute(&self, op: &SourceOp) -> Result<SourceReply, PortError> {
        match self {
            RouteSource::Direct(s) => s.execute(op).await,
            RouteSource::Arc(s) => s.execute(op).await,
        }
    }

    async fn link_state(
        &self,
        link: &LinkName,
        databases: &[DatabaseName],
    ) -> Result<SideView, PortError> {
        match self {
            RouteSource::Direct(s) => s.link_state(link, databases).await,
            RouteSource::Arc(s) => s.link_state(link, databases).await,
        }
    }

    async fn workload_activity(
        &self,
        databases: &[DatabaseName],
    ) -> Result<WorkloadActivity, PortError> {
        match self {
            RouteSource::Direct(s) => s.workload_activity(databases).await,
            RouteSource::Arc(s) => s.workload_activity(databases).await,
        }
    }

    async fn arc_begin(&self, op: &ArcOp) -> Result<ArmReply, PortError> {
        match self {
            RouteSource::Direct(s) => s.arc_begin(op).await,
            RouteSource::Arc(s) => s.arc_begin(op).await,
        }
    }

    async fn arc_poll(&self, op: &ArcOp, operation: &OperationRef) -> Result<PollReply, PortError> {
        match self {
            RouteSource::Direct(s) => s.arc_poll(op, operation).await,
            RouteSource::Arc(s) => s.arc_poll(op, operation).await,
        }
    }

    fn connection_warnings(&self) -> Vec<String> {
        match self {
            RouteSource::Direct(s) => s.connection_warnings(),
            RouteSource::Arc(s) => s.connection_warnings(),
        }
    }
}

/// A session on either route.
pub type RouteSession<J> = Session<RouteSource, SimManagedInstance, J>;

/// A lab whose link runs on `route` (its spec says so), with the simulated Azure served on
/// loopback for the Arc route.
pub struct Routed {
    /// The lab; `lab.spec.route` is the route's.
    pub lab: Lab,
    /// The route.
    pub route: Route,
    server: Option<ArmHttpsServer>,
    in_flight: Arc<InFlight>,
}

impl Routed {
    /// `lab` on `route`.
    pub async fn new(mut lab: Lab, route: Route) -> Routed {
        let server = match route {
            Route::Direct => None,
            Route::Arc => {
                let instance = lab
                    .sim
                    .with_world(|w| w.arc_instance_id())
                    .unwrap_or_else(|| panic!("the lab's SQL Server has an Arc resource"));
                lab.spec.route = LinkRoute::Arc { instance };
                match ArmHttpsServer::start(ArmServerConfig::with_token(TOKEN), lab.sim.clone())
                    .await
                {
                    Ok(server) => Some(server),
                    Err(e) => panic!("the simulated Azure starts on loopback: {e}"),
                }
            }
        };
        Routed {
            lab,
            route,
            server,
            in_flight: InFlight::new(),
        }
    }

    fn timer(&self) -> Arc<dyn Timer> {
        match self.route {
            Route::Direct => Arc::new(self.lab.sim.clock()),
            Route::Arc => Arc::new(WireClock::new(
                self.lab.sim.clock(),
                Arc::clone(&self.in_flight),
            )),
        }
    }

    /// SQL Server's port on the route (a new Arc client each time, as a new process has).
    pub fn source(&self) -> RouteSource {
        let Some(server) = &self.server else {
            return RouteSource::Direct(self.lab.sim.sql_server());
        };
        let LinkRoute::Arc { instance } = &self.lab.spec.route else {
            panic!("an Arc server on the direct route");
        };
        let options = ArmOptions::builder()
            .endpoint(server.base_url())
            .trust_root_der(server.certificate_der().to_vec())
            .build();
        let counter = Arc::clone(&self.in_flight);
        let arc = match ArcSqlServer::with_timer(
            instance.clone(),
            self.lab.spec.target.instance.clone(),
            Arc::new(StaticToken::new(TOKEN.into())),
            options,
            self.timer(),
        ) {
            Ok(arc) => arc.on_the_wire(Arc::new(move || Box::new(counter.enter()))),
            Err(e) => panic!("the Arc client builds: {e}"),
        };
        RouteSource::Arc(Box::new(ArcSourceServer::new(arc)))
    }

    /// A new session on the route, following the lab's workload on redirects.
    pub fn create<J: Journal + 'static>(
        &self,
        journal: J,
        options: SessionOptions,
    ) -> Result<RouteSession<J>, SessionError> {
        Ok(Session::create(
            self.lab.spec.clone(),
            Arc::new(self.source()),
            Arc::new(self.lab.sim.managed_instance()),
            journal,
            self.timer(),
            options,
        )?
        .with_redirect_hook(Arc::new(WorkloadRedirect::new(self.lab.sim.clone()))))
    }

    /// The session of `journal`, resumed by a new process on the route.
    pub fn resume<J: Journal + 'static>(
        &self,
        journal: J,
        options: SessionOptions,
    ) -> Result<RouteSession<J>, SessionError> {
        Ok(Session::resume(
            journal,
            Arc::new(self.source()),
            Arc::new(self.lab.sim.managed_instance()),
            self.timer(),
            options,
        )?
        .with_redirect_hook(Arc::new(WorkloadRedirect::new(self.lab.sim.clone()))))
    }
}
