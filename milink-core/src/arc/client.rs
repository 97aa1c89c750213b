//! Arc-enabled SQL Server over HTTPS (feature `arm`): [`ArcSqlServer`] sends each [`ArcOp`] as
//! [`super::request`] renders it through the ARM client's machinery
//! ([`ArmManagedInstance`]: bearer tokens from a `TokenCredential`, reqwest with rustls,
//! `x-ms-client-request-id`, retries of 429 (and of 408/5xx for reads) on the caller's timer,
//! bounded bodies, ARM's error mapping), and reads the answers as [`super::models`].
//!
//! | call | HTTP | answer |
//! |---|---|---|
//! | [`ArcSqlServer::instance`] | `GET {instance}` | [`SqlServerInstance`] (the facts, `properties.migration.assessment`) |
//! | [`ArcSqlServer::databases`] | `GET {instance}/databases` (pages followed) | [`SqlServerDatabase`]s |
//! | [`ArcSqlServer::availability_group`] | `GET {instance}/availabilityGroups/{ag}` | 404 → `None` |
//! | [`ArcSqlServer::begin`] | as rendered | 200 → [`ArcStarted::Done`] with the typed answer; 202 → [`ArcStarted::Accepted`] with an [`ArcOperation`] |
//! | [`ArcSqlServer::poll`] | `GET` the kept URL's path on the management endpoint | `Azure-AsyncOperation`: a status body, `Succeeded` → the result; `Location`: 202 running, 200/204 done |
//!
//! An [`ArcOperation`] is plain data (serde): kept in a state, a later process (or a resumed
//! session) polls it with [`ArcSqlServer::poll`] and never sends the operation again. When a
//! link operation (`createManagedInstanceLink`, `failoverMiLink`) succeeds, the poll reads the
//! link's availability group resource and returns it. For the assessment and the telemetry the
//! result is read from the finished status body's `properties` (else the body itself)
//! (UNVERIFIED: no example shows a status body; `final-state-via: azure-async-operation`).
//!
//! Errors are [`ArcError`]s: a 403 names the Azure RBAC operation to grant and, for the link's
//! steps, the just-in-time SQL permissions the extension needs ([`ArcPermissions`]); an
//! operation that the extension could not finish names the same; an offline agent and an
//! extension too old for several databases have their own variants. Each converts into the
//! [`PortError`] the ports use, with the same message.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use serde::{Deserialize, Serialize};

use super::models::{
    self, ArcAnswer, ArcConnectivityStatus, Listed, MiLinkAssessmentResult, OperationState,
    OperationStatus, SqlServerAvailabilityGroup, SqlServerDatabase, SqlServerInstance,
    TelemetryTable,
};
use super::permissions::ArcPermissions;
use super::{API_VERSION, ArcFailover, ArcInstanceId, ArcOp, request};
use crate::arm::client::{Answer, ArmManagedInstance, ArmOptions, MALFORMED};
use crate::arm::errors::operation_error;
use crate::arm::{ArmRequest, Method, segment};
use crate::lifecycle::{FailoverKind, OperationKind, OperationRef};
use crate::names::{AgName, InstanceId, LinkName};
use crate::ports::{PortError, PortErrorKind};
use crate::time::{SystemTimer, Timer};

/// Error codes that say the Arc agent (the Connected Machine agent or the extension) does not
/// answer. UNVERIFIED: the service's codes are not documented; these are the simulator's, and
/// an instance whose `status` is `Disconnected` is reported the same way.
pub const AGENT_OFFLINE_CODES: &[&str] = &["ArcAgentDisconnected", "ExtensionNotConnected"];
/// Error codes that say the extension is too old for the request (more than one database in a
/// link needs 1.1.3348.364 or later, milink-facts §6.1). UNVERIFIED as above.
pub const EXTENSION_TOO_OLD_CODES: &[&str] = &["ExtensionVersionNotSupported"];
pub use super::route::ACKNOWLEDGEMENT_REQUIRED;
/// The columns of the `SecondaryReplicaLag` telemetry milink reads (UNVERIFIED: the dataset's
/// columns are not documented; the simulator answers with these): the sample's time, the
/// database, the availability group, and the lag in seconds.
pub const LAG_COLUMNS: [&str; 4] = [
    "sample_time_utc",
    "database_name",
    "availability_group_name",
    "secondary_lag_seconds",
];

/// The replica lag of `database` in a `SecondaryReplicaLag` table (its first row), in seconds; `None`
/// if the table has no reading for it.
pub fn replica_lag_seconds(table: &TelemetryTable, database: &str) -> Option<f64> {
    let row = table.row_where(LAG_COLUMNS[1], database)?;
    let at = table.column(LAG_COLUMNS[3])?;
    row.get(at)?.as_deref()?.parse().ok()
}

/// The code of a request a read-only [`ArcSqlServer`] refused to send.
pub const READ_ONLY_REFUSED: &str = "arc:ReadOnly";

/// The `POST` actions on an instance that only read ([`ArcOp::is_read`]): what a read-only
/// [`ArcSqlServer`] sends besides `GET`s.
pub const READ_ACTIONS: &[&str] = &["getTelemetry", "runManagedInstanceLinkAssessment"];

/// What an [`ArcSqlServer`] may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ArcAccess {
    /// Every operation (the link's creation, failover and removal too).
    #[default]
    ReadWrite,
    /// `GET`s, and `POST`s of the [`READ_ACTIONS`] on the client's own instance; anything
    /// else is refused before it is sent (code [`READ_ONLY_REFUSED`]).
    ReadOnly,
}

/// The oldest Azure Extension for SQL Server that links more than one database at once.
pub const MULTI_DATABASE_EXTENSION: &str = "1.1.3348.364";

/// What went wrong with an Arc call, typed by what the user does about it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ArcError {
    /// 403: the caller lacks the Azure RBAC operation. The message names it and, for the
    /// link's steps, the just-in-time SQL permissions the extension will need next.
    #[error("{error}; {permissions}")]
    PermissionDenied {
        /// What the operation needs.
        permissions: Box<ArcPermissions>,
        /// ARM's answer, as the ports report it.
        error: PortError,
    },
    /// The extension ran the operation and it failed (an operation that ended `Failed` or
    /// `Canceled`, possibly part-way: what it created before stays). The message names the SQL
    /// permissions the extension needs for the step and the RBAC operation.
    #[error("{error}; check what the extension may do: {permissions}")]
    ExtensionFailed {
        /// What the operation needs.
        permissions: Box<ArcPermissions>,
        /// The operation's error.
        error: PortError,
    },
    /// The Arc agent or the extension does not answer: nothing reaches SQL Server.
    #[error(
        "{error}; the Arc agent on the SQL Server's machine is offline: start the Azure \
         Connected Machine agent and the Azure Extension for SQL Server, then retry"
    )]
    AgentOffline {
        /// The error, as the ports report it.
        error: PortError,
    },
    /// The extension is too old for the request (a link of several databases).
    #[error(
        "{error}; a link of more than one database needs the Azure Extension for SQL Server \
         {MULTI_DATABASE_EXTENSION} or later: update the extension, or link one database at a \
         time"
    )]
    ExtensionTooOld {
        /// The error, as the ports report it.
        error: PortError,
    },
    /// Any other failure: transport, throttling, a malformed answer, another refusal.
    #[error("{0}")]
    Port(PortError),
}

impl ArcError {
    /// The underlying error (code, transience, `Retry-After`).
    pub fn port(&self) -> &PortError {
        match self {
            ArcError::PermissionDenied { error, .. }
            | ArcError::ExtensionFailed { error, .. }
            | ArcError::AgentOffline { error }
            | ArcError::ExtensionTooOld { error }
            | ArcError::Port(error) => error,
        }
    }

    /// The error's code (`arm:403:AuthorizationFailed`, `io`, …).
    pub fn code(&self) -> String {
        self.port().code()
    }
}

impl From<ArcError> for PortError {
    /// The port's error with the whole message (permissions and fixes included).
    fn from(e: ArcError) -> PortError {
        let message = e.to_string();
        let mut error = e.port().clone();
        error.message = message;
        error
    }
}

/// A long-running Arc operation that was accepted: what to poll, kept as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArcOperation {
    /// The operation's id in the REST specs ([`ArcOp::operation_id`]).
    pub operation_id: String,
    /// The URL to poll and its kind; `resource` is the link's availability group (path and
    /// query), read when a link operation succeeds.
    pub operation: OperationRef,
}

/// The first answer to an operation.
#[derive(Debug, Clone, PartialEq)]
pub enum ArcStarted {
    /// Done at once, with its answer.
    Done(ArcAnswer),
    /// Accepted: poll it.
    Accepted(ArcOperation),
}

/// One poll of an [`ArcOperation`].
#[derive(Debug, Clone, PartialEq)]
pub enum ArcPoll {
    /// Still running; poll again after `retry_after` if given.
    Running {
        /// The service's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// Finished: the result (`None` for `deleteMiLink`, which has none).
    Succeeded(Option<Box<ArcAnswer>>),
}

/// An Arc-enabled SQL Server instance, reached through ARM, with the managed instance at the
/// other end of its link.
pub struct ArcSqlServer {
    instance: ArcInstanceId,
    arm: ArmManagedInstance,
    endpoint: String,
    timer: Arc<dyn Timer>,
    access: ArcAccess,
}

impl fmt::Debug for ArcSqlServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArcSqlServer")
            .field("instance", &self.instance.to_string())
            .field("arm", &self.arm)
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

impl ArcSqlServer {
    /// The client for `instance`, whose link partner is `managed_instance`, waiting on the
    /// system timer.
    pub fn new(
        instance: ArcInstanceId,
        managed_instance: InstanceId,
        credential: Arc<dyn TokenCredential>,
        options: ArmOptions,
    ) -> Result<Self, PortError> {
        Self::with_timer(
            instance,
            managed_instance,
            credential,
            options,
            Arc::new(SystemTimer),
        )
    }

    /// The client waiting between retries and polls on `timer`.
    pub fn with_timer(
        instance: ArcInstanceId,
        managed_instance: InstanceId,
        credential: Arc<dyn TokenCredential>,
        options: ArmOptions,
        timer: Arc<dyn Timer>,
    ) -> Result<Self, PortError> {
        let endpoint = options.endpoint.trim_end_matches('/').to_owned();
        let arm = ArmManagedInstance::with_timer(
            managed_instance,
            credential,
            options,
            Arc::clone(&timer),
        )?;
        Ok(ArcSqlServer {
            instance,
            arm,
            endpoint,
            timer,
            access: ArcAccess::ReadWrite,
        })
    }

    /// The same client, refusing every request that is not a read ([`ArcAccess::ReadOnly`]):
    /// for opt-in tests against real Azure, and for looking without touching. The managed
    /// instance's client ([`ArcSqlServer::managed_instance`]) is not restricted.
    pub fn read_only(mut self) -> Self {
        self.access = ArcAccess::ReadOnly;
        self
    }

    /// What this client may send.
    pub fn access(&self) -> ArcAccess {
        self.access
    }

    /// Whether `method` on `path` (without its query) is a read this client may send in
    /// [`ArcAccess::ReadOnly`]: a `GET`, or a `POST` of a [`READ_ACTIONS`] on its instance.
    fn is_read_request(&self, method: Method, path: &str) -> bool {
        match method {
            Method::Get => true,
            Method::Post => {
                let instance = self.instance.path();
                path.len() > instance.len()
                    && path
                        .get(..instance.len())
                        .is_some_and(|p| p.eq_ignore_ascii_case(&instance))
                    && READ_ACTIONS
                        .iter()
                        .any(|a| path[instance.len()..] == format!("/{a}"))
            }
            _ => false,
        }
    }

    /// Counts each request on the wire with `enter` (the simulator's virtual clock waits for
    /// calls in flight), as [`ArmManagedInstance::on_the_wire`].
    pub fn on_the_wire(mut self, enter: crate::arm::client::OnTheWire) -> Self {
        self.arm = self.arm.on_the_wire(enter);
        self
    }

    /// The time on the client's timer.
    pub fn now(&self) -> crate::time::Timestamp {
        self.timer.now()
    }

    /// The Arc instance.
    pub fn instance_id(&self) -> &ArcInstanceId {
        &self.instance
    }

    /// The managed instance's ARM client (the link resource, its databases), sharing the
    /// credential and options.
    pub fn managed_instance(&self) -> &ArmManagedInstance {
        &self.arm
    }

    async fn send(&self, request: &ArmRequest, url: &str) -> Result<Answer, ArcError> {
        let what = format!("{} {}", request.method, request.path);
        if self.access == ArcAccess::ReadOnly
            && !self.is_read_request(request.method, &request.path)
        {
            return Err(ArcError::Port(PortError::permanent(
                PortErrorKind::Other(READ_ONLY_REFUSED.to_owned()),
                format!(
                    "{what} was refused: this Azure Arc client is read-only (it sends GETs and \
                     the read actions {}); nothing was sent",
                    READ_ACTIONS.join(", ")
                ),
            )));
        }
        self.arm
            .send(request.method, url, request.body.as_ref(), &what)
            .await
            .map_err(ArcError::Port)
    }

    /// The instance: its facts, its agent's connectivity, its migration assessment.
    pub async fn instance(&self) -> Result<SqlServerInstance, ArcError> {
        match self.begin(&ArcOp::GetInstance).await? {
            ArcStarted::Done(ArcAnswer::Instance(i)) => Ok(*i),
            other => Err(unexpected(&ArcOp::GetInstance, &other)),
        }
    }

    /// Every database of the instance (`nextLink` followed on the management endpoint).
    pub async fn databases(&self) -> Result<Vec<SqlServerDatabase>, ArcError> {
        self.list(ArcOp::ListDatabases).await
    }

    /// Every page of the list `op` reads.
    async fn list<T>(&self, op: ArcOp) -> Result<Vec<T>, ArcError>
    where
        Listed<T>: models::ArcModel,
    {
        let request = request(&op, &self.instance);
        let mut url = request.url(&self.endpoint);
        let mut out = Vec::new();
        for _ in 0..100 {
            let answer = self.send(&request, &url).await?;
            if answer.status != 200 {
                return Err(self.refusal(&op, &request, &answer));
            }
            let page: Listed<T> =
                models::parse(&answer.body).map_err(|e| malformed(&request, &e))?;
            out.extend(page.value);
            match page.next_link {
                Some(next) => {
                    url = format!("{}{}", self.endpoint, path_and_query(&next));
                }
                None => return Ok(out),
            }
        }
        Err(ArcError::Port(PortError::permanent(
            MALFORMED,
            format!("{} {}: more than 100 pages", request.method, request.path),
        )))
    }

    /// Every availability group of the instance, distributed ones (links) included
    /// (`nextLink` followed on the management endpoint).
    pub async fn availability_groups(&self) -> Result<Vec<SqlServerAvailabilityGroup>, ArcError> {
        self.list(ArcOp::ListAvailabilityGroups).await
    }

    /// An availability group of the instance (a link's distributed one too); `None` if there
    /// is none of that name.
    pub async fn availability_group(
        &self,
        name: &AgName,
    ) -> Result<Option<SqlServerAvailabilityGroup>, ArcError> {
        let op = ArcOp::GetAvailabilityGroup { name: name.clone() };
        let request = request(&op, &self.instance);
        let answer = self.send(&request, &request.url(&self.endpoint)).await?;
        match answer.status {
            404 => Ok(None),
            200 => models::parse(&answer.body)
                .map(Some)
                .map_err(|e| malformed(&request, &e)),
            _ => Err(self.refusal(&op, &request, &answer)),
        }
    }

    /// Sends `op` once: its answer, or the operation to poll. A refusal is typed
    /// ([`ArcError`]); a `POST` is never sent again after a 5xx (it may have started).
    pub async fn begin(&self, op: &ArcOp) -> Result<ArcStarted, ArcError> {
        let request = request(op, &self.instance);
        let answer = self.send(&request, &request.url(&self.endpoint)).await?;
        if !answer.is_success() {
            return Err(self.refusal(op, &request, &answer));
        }
        if answer.status == 202 && op.is_long_running() {
            let (url, kind) = match (&answer.azure_async_operation, &answer.location) {
                (Some(url), _) => (url.clone(), OperationKind::AzureAsyncOperation),
                (None, Some(url)) => (url.clone(), OperationKind::Location),
                (None, None) => {
                    return Err(ArcError::Port(PortError::permanent(
                        MALFORMED,
                        format!(
                            "{} {} was accepted without an Azure-AsyncOperation or Location \
                             header to follow",
                            request.method, request.path
                        ),
                    )));
                }
            };
            let resource = self.result_resource(op);
            return Ok(ArcStarted::Accepted(ArcOperation {
                operation_id: op.operation_id().to_owned(),
                operation: OperationRef {
                    url,
                    kind,
                    resource,
                },
            }));
        }
        models::answer(op, answer.status, &answer.body)
            .map(ArcStarted::Done)
            .map_err(|e| malformed(&request, &e))
    }

    /// The availability group a link operation's result is read from, as a path and query.
    fn result_resource(&self, op: &ArcOp) -> Option<String> {
        let name = match op {
            ArcOp::CreateMiLink(create) => create.distributed_availability_group.name.as_str(),
            ArcOp::FailoverMiLink { link, .. } => link.as_str(),
            _ => return None,
        };
        Some(format!(
            "{}/availabilityGroups/{}?api-version={API_VERSION}",
            self.instance.path(),
            segment(name)
        ))
    }

    /// Polls a kept operation once: never sends the operation itself again.
    pub async fn poll(&self, operation: &ArcOperation) -> Result<ArcPoll, ArcError> {
        let path = path_and_query(&operation.operation.url);
        // The bearer token goes to the management endpoint only, whatever host the URL named.
        let url = format!("{}{path}", self.endpoint);
        let request = ArmRequest {
            method: Method::Get,
            path: path.split('?').next().unwrap_or(path).to_owned(),
            api_version: API_VERSION,
            body: None,
        };
        let answer = self.send(&request, &url).await?;
        let permissions = permissions_of(&operation.operation_id);
        let running = ArcPoll::Running {
            retry_after: answer.retry_after,
        };
        let body = match operation.operation.kind {
            OperationKind::Location => match answer.status {
                202 => return Ok(running),
                200 | 201 | 204 => answer.body.clone(),
                // The operation's own failure, unless the operation is unknown.
                _ => {
                    let ended = answer.status != 404;
                    return Err(classify(permissions, answer.error(&request), ended));
                }
            },
            OperationKind::AzureAsyncOperation => {
                if !answer.is_success() {
                    return Err(classify(permissions, answer.error(&request), false));
                }
                let status: OperationStatus =
                    models::parse(&answer.body).map_err(|e| malformed(&request, &e))?;
                match status.status {
                    OperationState::Succeeded => result_of(&answer.body),
                    OperationState::Failed | OperationState::Canceled => {
                        let error = operation_error(&request, &status);
                        return Err(classify(permissions, error, true));
                    }
                    _ => return Ok(running),
                }
            }
        };
        self.finished(operation, &body)
            .await
            .map(|answer| ArcPoll::Succeeded(answer.map(Box::new)))
    }

    /// The result of a finished operation.
    async fn finished(
        &self,
        operation: &ArcOperation,
        body: &[u8],
    ) -> Result<Option<ArcAnswer>, ArcError> {
        if let Some(resource) = &operation.operation.resource {
            let path = path_and_query(resource);
            let request = ArmRequest {
                method: Method::Get,
                path: path.split('?').next().unwrap_or(path).to_owned(),
                api_version: API_VERSION,
                body: None,
            };
            let answer = self
                .send(&request, &format!("{}{path}", self.endpoint))
                .await?;
            return match answer.status {
                200 => models::parse(&answer.body)
                    .map(|ag| Some(ArcAnswer::AvailabilityGroup(Box::new(ag))))
                    .map_err(|e| malformed(&request, &e)),
                // A failover can end with the link gone from this side's list (the MI side
                // holds it): the operation succeeded.
                404 => Ok(None),
                _ => Err(ArcError::Port(answer.error(&request))),
            };
        }
        let request = ArmRequest {
            method: Method::Get,
            path: operation.operation.url.clone(),
            api_version: API_VERSION,
            body: None,
        };
        let parsed = match operation.operation_id.as_str() {
            "SqlServerInstances_RunManagedInstanceLinkAssessment" => {
                models::parse::<MiLinkAssessmentResult>(body).map(ArcAnswer::MiLinkAssessment)
            }
            "SqlServerInstances_GetTelemetry" => {
                models::parse::<TelemetryTable>(body).map(ArcAnswer::Telemetry)
            }
            _ => return Ok(None),
        };
        parsed.map(Some).map_err(|e| malformed(&request, &e))
    }

    /// Begins `op` and polls it to its end on the timer, waiting `Retry-After` (or
    /// `default_wait`) between polls, at most `max_polls` times.
    pub async fn run(
        &self,
        op: &ArcOp,
        default_wait: Duration,
        max_polls: u32,
    ) -> Result<Option<ArcAnswer>, ArcError> {
        let operation = match self.begin(op).await? {
            ArcStarted::Done(answer) => return Ok(Some(answer)),
            ArcStarted::Accepted(operation) => operation,
        };
        self.follow(&operation, default_wait, max_polls).await
    }

    /// Polls a kept operation to its end (a resume's path: the operation is not sent again).
    pub async fn follow(
        &self,
        operation: &ArcOperation,
        default_wait: Duration,
        max_polls: u32,
    ) -> Result<Option<ArcAnswer>, ArcError> {
        for _ in 0..max_polls {
            match self.poll(operation).await? {
                ArcPoll::Succeeded(answer) => return Ok(answer.map(|a| *a)),
                ArcPoll::Running { retry_after } => {
                    let wait = retry_after.unwrap_or(default_wait);
                    let timer: &dyn Timer = self.timer.as_ref();
                    timer.sleep_until(timer.now().plus(wait)).await;
                }
            }
        }
        Err(ArcError::Port(PortError::transient(
            PortErrorKind::Timeout,
            format!(
                "{} did not finish within {max_polls} polls; poll {} again later",
                operation.operation_id, operation.operation.url
            ),
        )))
    }

    /// The `failoverMiLink` operation for `kind`: planned, or forced only with an
    /// acknowledgement that names the link (a forced failover may lose every commit the
    /// managed instance had not hardened). Refused otherwise; nothing is sent.
    pub fn failover_op(&self, link: &LinkName, kind: &FailoverKind) -> Result<ArcOp, ArcError> {
        let failover = match kind {
            FailoverKind::Planned => ArcFailover::Planned,
            FailoverKind::Forced(Some(ack)) if ack.link == link.as_str() => {
                ArcFailover::ForcedAllowDataLoss
            }
            FailoverKind::Forced(ack) => {
                return Err(ArcError::Port(PortError::permanent(
                    PortErrorKind::Other(ACKNOWLEDGEMENT_REQUIRED.to_owned()),
                    format!(
                        "a forced failover of '{link}' may lose data and needs an \
                         acknowledgement naming the link{}; nothing was sent",
                        match ack {
                            Some(ack) => format!(" (it named '{}')", ack.link),
                            None => String::new(),
                        }
                    ),
                )));
            }
        };
        Ok(ArcOp::FailoverMiLink {
            link: link.clone(),
            managed_instance: self.arm.instance().clone(),
            failover,
        })
    }

    /// The replica lag of `database` (`SecondaryReplicaLag`, UNVERIFIED dataset) as the
    /// telemetry table.
    pub async fn telemetry(
        &self,
        request: super::TelemetryRequest,
        default_wait: Duration,
        max_polls: u32,
    ) -> Result<TelemetryTable, ArcError> {
        let op = ArcOp::GetTelemetry(Box::new(request));
        match self.run(&op, default_wait, max_polls).await? {
            Some(ArcAnswer::Telemetry(t)) => Ok(t),
            other => Err(unexpected_answer(&op, other.as_ref())),
        }
    }

    /// The readiness report through Arc ([`super::assessment::assess_through_arc`]): the
    /// instance and its databases read, Arc's MI link assessment run with all categories for
    /// `request` (polled on the timer), and the migration assessment the instance holds (start
    /// one earlier with [`ArcOp::RunMigrationAssessment`]: it is a job whose results appear on
    /// the instance later).
    pub async fn assess(
        &self,
        request: super::MiLinkAssessmentRequest,
        target: Option<&crate::assess::TargetFacts>,
        options: &crate::assess::AssessOptions,
        default_wait: Duration,
        max_polls: u32,
    ) -> Result<crate::assess::ReadinessReport, ArcError> {
        let instance = self.instance().await?;
        let databases = self.databases().await?;
        let request = super::MiLinkAssessmentRequest {
            categories: Vec::new(),
            ..request
        };
        let op = ArcOp::RunMiLinkAssessment(Box::new(request));
        let checks = match self.run(&op, default_wait, max_polls).await? {
            Some(ArcAnswer::MiLinkAssessment(result)) => result,
            other => return Err(unexpected_answer(&op, other.as_ref())),
        };
        super::assessment::assess_through_arc(&instance, &databases, Some(&checks), target, options)
            .map_err(|e| {
                ArcError::Port(PortError::permanent(
                    MALFORMED,
                    format!("the facts Azure Arc reports cannot be assessed: {e}"),
                ))
            })
    }

    /// Whether the instance's agent is connected, by its `status` (a read that works while the
    /// agent is offline: ARM answers from its own copy).
    pub async fn agent_connected(&self) -> Result<bool, ArcError> {
        let instance = self.instance().await?;
        Ok(!matches!(
            instance.properties.status,
            Some(ArcConnectivityStatus::Disconnected)
        ))
    }

    /// A refusal of `op` as a typed error.
    fn refusal(&self, op: &ArcOp, request: &ArmRequest, answer: &Answer) -> ArcError {
        classify(Some(ArcPermissions::of(op)), answer.error(request), false)
    }
}

/// The permissions of an operation known by its id (for a kept operation).
fn permissions_of(operation_id: &str) -> Option<ArcPermissions> {
    use crate::names::InstanceId as Mi;
    let link = LinkName::new("link").ok()?;
    let op = match operation_id {
        "SqlServerAvailabilityGroups_CreateManagedInstanceLink" => {
            return Some(ArcPermissions {
                operation_id: "SqlServerAvailabilityGroups_CreateManagedInstanceLink",
                rbac_action:
                    "Microsoft.AzureArcData/sqlServerInstances/createManagedInstanceLink/action"
                        .to_owned(),
                step: Some("create"),
                jit_sql: super::permissions::JIT_CREATE,
            });
        }
        "SqlServerAvailabilityGroups_failoverMiLink" => ArcOp::FailoverMiLink {
            link,
            managed_instance: Mi::from_parts("s", "g", "mi").ok()?,
            failover: super::ArcFailover::Planned,
        },
        "SqlServerAvailabilityGroups_deleteMiLink" => ArcOp::DeleteMiLink { link },
        _ => return None,
    };
    Some(ArcPermissions::of(&op))
}

/// The typed error of `error`: 403 → permission, the agent's and extension's codes, and for an
/// operation that ended badly, the extension's failure (when it is a link step).
fn classify(permissions: Option<ArcPermissions>, error: PortError, ended: bool) -> ArcError {
    let code = match &error.kind {
        PortErrorKind::Arm { code, .. } => Some(code.as_str()),
        _ => None,
    };
    let status = match &error.kind {
        PortErrorKind::Arm { status, .. } => Some(*status),
        PortErrorKind::Http(status) => Some(*status),
        _ => None,
    };
    if code.is_some_and(|c| AGENT_OFFLINE_CODES.contains(&c)) {
        return ArcError::AgentOffline { error };
    }
    if code.is_some_and(|c| EXTENSION_TOO_OLD_CODES.contains(&c)) {
        return ArcError::ExtensionTooOld { error };
    }
    match permissions {
        Some(permissions) if status == Some(403) => ArcError::PermissionDenied {
            permissions: Box::new(permissions),
            error,
        },
        Some(permissions) if ended && permissions.step.is_some() => ArcError::ExtensionFailed {
            permissions: Box::new(permissions),
            error,
        },
        _ => ArcError::Port(error),
    }
}

/// The result in a finished status body: its `properties` if it has them, else the body.
fn result_of(body: &[u8]) -> Vec<u8> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("properties").filter(|p| p.is_object()).cloned())
        .and_then(|p| serde_json::to_vec(&p).ok())
        .unwrap_or_else(|| body.to_vec())
}

fn malformed(request: &ArmRequest, e: &models::ArcParseError) -> ArcError {
    ArcError::Port(PortError::permanent(
        MALFORMED,
        format!("{} {}: {e}", request.method, request.path),
    ))
}

fn unexpected(op: &ArcOp, started: &ArcStarted) -> ArcError {
    let what = match started {
        ArcStarted::Done(_) => "another answer",
        ArcStarted::Accepted(_) => "202 Accepted",
    };
    ArcError::Port(PortError::permanent(
        MALFORMED,
        format!("{} answered with {what}", op.operation_id()),
    ))
}

fn unexpected_answer(op: &ArcOp, answer: Option<&ArcAnswer>) -> ArcError {
    ArcError::Port(PortError::permanent(
        MALFORMED,
        format!(
            "{} ended without its result ({})",
            op.operation_id(),
            if answer.is_some() {
                "another answer"
            } else {
                "none"
            }
        ),
    ))
}

/// What follows the authority of an absolute URL, from its first `/` (`/` when none): what is
/// appended to the management endpoint, so a kept or hostile URL cannot name another host.
fn path_and_query(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.find('/').map_or("/", |at| &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_path_of_a_url_is_followed() {
        assert_eq!(
            path_and_query("https://evil.example/subscriptions/s/x?api-version=1"),
            "/subscriptions/s/x?api-version=1"
        );
        assert_eq!(path_and_query("/subscriptions/s"), "/subscriptions/s");
        // No leading slash: never glued onto the endpoint's host.
        assert_eq!(path_and_query("evil.example"), "/");
        assert_eq!(path_and_query("evil.example/x"), "/x");
    }

    #[test]
    fn read_only_means_the_reads_of_arc_op_and_only_on_this_instance() {
        use crate::arm::client::StaticToken;
        use crate::secret::Secret;
        let id = ArcInstanceId::from_parts("s", "rg", "HOST_INST").unwrap();
        let mi = InstanceId::from_parts("s", "rg", "mi").unwrap();
        let arc = ArcSqlServer::new(
            id.clone(),
            mi.clone(),
            Arc::new(StaticToken::new(Secret::new("t"))),
            ArmOptions::default(),
        )
        .unwrap();
        assert_eq!(arc.access(), ArcAccess::ReadWrite);
        let arc = arc.read_only();
        let link = LinkName::new("dag").unwrap();
        let telemetry = super::super::TelemetryRequest::replica_lag(
            crate::names::DatabaseName::new("db").unwrap(),
            crate::time::Timestamp::from_millis(1_000_000),
            Duration::from_secs(60),
        );
        let ops = [
            ArcOp::GetInstance,
            ArcOp::ListDatabases,
            ArcOp::ListAvailabilityGroups,
            ArcOp::GetAvailabilityGroup {
                name: AgName::new("ag").unwrap(),
            },
            ArcOp::GetTelemetry(Box::new(telemetry)),
            ArcOp::RunMigrationAssessment,
            ArcOp::FailoverMiLink {
                link: link.clone(),
                managed_instance: mi,
                failover: ArcFailover::Planned,
            },
            ArcOp::DeleteMiLink { link },
        ];
        for op in &ops {
            let r = request(op, &id);
            assert_eq!(
                arc.is_read_request(r.method, &r.path),
                op.is_read(),
                "{op:?}"
            );
        }
        // A read action on another instance, or another verb, is not a read of this client.
        let other = ArcInstanceId::from_parts("s", "rg", "OTHER").unwrap();
        let path = format!("{}/getTelemetry", other.path());
        assert!(!arc.is_read_request(Method::Post, &path));
        let path = format!("{}/getTelemetry/x", id.path());
        assert!(!arc.is_read_request(Method::Post, &path));
        assert!(!arc.is_read_request(Method::Post, &id.path()));
        assert!(!arc.is_read_request(Method::Delete, &id.path()));
        assert!(!arc.is_read_request(Method::Put, &id.path()));
    }

    #[test]
    fn typed_errors_keep_their_code_and_name_what_to_grant() {
        let error = PortError::permanent(
            PortErrorKind::Arm {
                status: 403,
                code: "AuthorizationFailed".to_owned(),
            },
            "POST … returned 403",
        );
        let permissions = permissions_of("SqlServerAvailabilityGroups_deleteMiLink");
        let e = classify(permissions.clone(), error.clone(), false);
        assert!(matches!(e, ArcError::PermissionDenied { .. }));
        assert!(e.to_string().contains("deleteMiLink/action"), "{e}");
        assert!(e.to_string().contains("sysadmin"), "{e}");
        let ended = PortError::permanent(
            PortErrorKind::Arm {
                status: 400,
                code: "SqlServerExtensionOperationFailed".to_owned(),
            },
            "the operation ended Failed",
        );
        assert!(matches!(
            classify(permissions.clone(), ended.clone(), true),
            ArcError::ExtensionFailed { .. }
        ));
        // The same error before the operation ran is not the extension's.
        assert!(matches!(
            classify(permissions, ended, false),
            ArcError::Port(_)
        ));
        // A read has no SQL step: a failed read stays a port error.
        let other = PortError::permanent(PortErrorKind::Http(500), "boom");
        assert!(matches!(classify(None, other, true), ArcError::Port(_)));
        let port: PortError = e.into();
        assert_eq!(port.code(), "arm:403:AuthorizationFailed");
        assert!(port.message.contains("ALTER ANY AVAILABILITY GROUP"));
    }
}
