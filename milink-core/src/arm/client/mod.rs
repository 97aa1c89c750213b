//! The managed instance through Azure Resource Manager (feature `arm`): [`ArmManagedInstance`]
//! sends each [`InstanceOp`] as [`crate::arm::request`] renders it, with a bearer token from an
//! `azure_core` [`TokenCredential`], over reqwest with rustls.
//!
//! | call | HTTP | answer |
//! |---|---|---|
//! | `begin(GetEndpointCertificate)` | `GET …/endpointCertificates/DATABASE_MIRRORING` | 200 → `PublicKey(der)` from `publicBlob` |
//! | `begin(PUT …)` (certificate, link) | `PUT` | 200/204 → `Completed`; 201 → `Accepted` if it names an operation, else a final `GET` of the resource → `Completed`; 202 → `Accepted` |
//! | `begin(PATCH/POST/DELETE …)` | as rendered | 200/201/204 → `Completed`; 202 → `Accepted` |
//! | `poll(op)` | `GET op.url` exactly as kept | `Azure-AsyncOperation`: `InProgress` → `Running`, `Succeeded`, `Failed`/`Canceled` → error; `Location`: 202 → `Running`, 200/201/204 → `Succeeded` |
//! | `poll(op)` of a `PUT`, done | then `GET op.resource` | `provisioningState` `Succeeded` or absent → `Succeeded`; `Failed`/`Canceled` → `arm:ProvisioningFailed`; another state (`Updating`, …) → `Running` |
//! | `link_state(link)` | `GET …/distributedAvailabilityGroups/{link}`, then `GET …/managedInstances/{mi}` | 404 → not there; 200 → the instance's [`SideView`] with `databaseFormat` |
//! | `full_backups`, `workload_activity` | none | `unsupported`: T-SQL reads, see `sqlserver::instance_reads::WithInstanceTsql` |
//!
//! `Accepted` carries the `Azure-AsyncOperation` URL when ARM sends one, else `Location`, and
//! for a `PUT` the resource to read when it is done ([`crate::arm::put_resource`]). Both are a
//! continuation kept in the lifecycle state: a new adapter polls the URL as is and never begins
//! the operation again.
//!
//! Reads (no [`InstanceOp`]): [`ArmManagedInstance::managed_instance`],
//! [`ArmManagedInstance::databases`], [`ArmManagedInstance::server_trust_certificates`],
//! [`ArmManagedInstance::find_server_trust_certificate`], [`ArmManagedInstance::links`] and
//! [`ArmManagedInstance::link`], typed with [`crate::arm::models`], lists followed through
//! `nextLink` on the management endpoint. Tokens come from any `TokenCredential`, e.g. the one
//! the environment names ([`credential_from_environment`]).
//!
//! Every request carries `User-Agent: milink/<version>` and a fresh `x-ms-client-request-id`;
//! 429 (and 408 and 5xx except for `POST` actions) is retried up to
//! [`ArmOptions::max_retries`] times on the caller's [`Timer`], waiting `Retry-After` up to
//! [`ArmOptions::max_retry_after`]. An error keeps ARM's code (`arm:409:ManagedInstanceIsBusy`,
//! `http:503`), transport failures are `io`, `timeout` or `tls`, and its message names
//! `x-ms-request-id` and `x-ms-correlation-request-id`. Bodies are read up to 1 MiB. The token
//! never appears in `Debug`, logs or errors.

mod budget;
pub mod credential;
mod http;
mod options;
mod reads;
mod target;
mod token;
mod view;

#[cfg(test)]
mod tests;

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use serde_json::Value;

use crate::arm::{self, API_VERSION, ArmRequest, Method, segment};
use crate::lifecycle::{FullBackup, InstanceOp, LinkName, OperationKind, OperationRef, SideView};
use crate::names::{DatabaseName, InstanceId};
use crate::ports::{ArmReply, ManagedInstance, PollReply, PortError, PortErrorKind, UNSUPPORTED};
use crate::time::{SystemTimer, Timer};

pub use budget::{ARM_READ_CAPACITY, ARM_READ_REFILL_PER_SECOND, ARM_READ_RESERVE, ArmReadBudget};
pub use credential::{CredentialChoice, CredentialError, StaticToken, credential_from_environment};
pub use options::{ArmOptions, ArmOptionsBuilder, USER_AGENT};
pub use target::TARGET_READS;

pub(crate) use http::{Answer, MALFORMED};
use token::ArmTokens;
use view::OperationStatus;

/// Called as a request goes on the wire; the value it returns is dropped when the answer has
/// been read (never held across a retry's wait). The lab counts wire calls with it
/// (`sim::wire::InFlight::enter`), so virtual time waits for an answer.
pub type OnTheWire = Arc<dyn Fn() -> Box<dyn Any + Send> + Send + Sync>;

/// The managed instance through ARM. Implements [`ManagedInstance`].
pub struct ArmManagedInstance {
    instance: InstanceId,
    options: ArmOptions,
    http: reqwest::Client,
    tokens: ArmTokens,
    timer: Arc<dyn Timer>,
    on_the_wire: Option<OnTheWire>,
    read_budget: Option<Arc<ArmReadBudget>>,
}

impl fmt::Debug for ArmManagedInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArmManagedInstance")
            .field("instance", &self.instance.to_string())
            .field("options", &self.options)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl ArmManagedInstance {
    /// The adapter for `instance`, with tokens from `credential`, waiting on the system timer,
    /// its reads spending the process's [`ArmReadBudget::process`].
    pub fn new(
        instance: InstanceId,
        credential: Arc<dyn TokenCredential>,
        options: ArmOptions,
    ) -> Result<Self, PortError> {
        Ok(
            ArmManagedInstance::with_timer(instance, credential, options, Arc::new(SystemTimer))?
                .with_read_budget(Some(ArmReadBudget::process())),
        )
    }

    /// The adapter waiting between retries (and judging token expiry) on `timer`.
    pub fn with_timer(
        instance: InstanceId,
        credential: Arc<dyn TokenCredential>,
        options: ArmOptions,
        timer: Arc<dyn Timer>,
    ) -> Result<Self, PortError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(options.user_agent.as_str())
            .timeout(options.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true)
            .http1_only();
        for der in &options.extra_root_der {
            let certificate = reqwest::Certificate::from_der(der).map_err(|e| {
                PortError::permanent(http::TLS, format!("the trusted root is not DER: {e}"))
            })?;
            builder = builder.tls_certs_merge([certificate]);
        }
        let http = builder.build().map_err(|e| {
            PortError::permanent(http::TLS, format!("the HTTPS client could not start: {e}"))
        })?;
        let clock: Arc<dyn crate::time::Clock> = Arc::new(TimerClock(Arc::clone(&timer)));
        let tokens = ArmTokens::new(
            credential,
            clock,
            options.scope.clone(),
            options.token_timeout,
        );
        Ok(ArmManagedInstance {
            instance,
            options,
            http,
            tokens,
            timer,
            on_the_wire: None,
            read_budget: None,
        })
    }

    /// Spends `budget` on every read (`GET`): a read waits on this adapter's timer while the
    /// budget is empty, and the budget follows ARM's
    /// `x-ms-ratelimit-remaining-subscription-reads`. Adapters that share a principal and a
    /// subscription should share one budget ([`ArmReadBudget::process`] is the process's,
    /// which [`ArmManagedInstance::new`] uses); `None` (the default of
    /// [`ArmManagedInstance::with_timer`], whose timer may be virtual) spends none.
    pub fn with_read_budget(mut self, budget: Option<Arc<ArmReadBudget>>) -> Self {
        self.read_budget = budget;
        self
    }

    /// Counts each request on the wire with `enter` (see [`OnTheWire`]).
    pub fn on_the_wire(mut self, enter: OnTheWire) -> Self {
        self.on_the_wire = Some(enter);
        self
    }

    /// The instance this adapter manages.
    pub fn instance(&self) -> &InstanceId {
        &self.instance
    }

    fn resource_url(&self, path: &str) -> String {
        format!(
            "{}{}/{path}?api-version={API_VERSION}",
            self.options.endpoint, self.instance
        )
    }

    fn accepted(
        answer: &http::Answer,
        what: &str,
        resource: Option<String>,
    ) -> Result<ArmReply, PortError> {
        let operation = match (&answer.azure_async_operation, &answer.location) {
            (Some(url), _) => OperationRef {
                url: url.clone(),
                kind: OperationKind::AzureAsyncOperation,
                resource,
            },
            (None, Some(url)) => OperationRef {
                url: url.clone(),
                kind: OperationKind::Location,
                resource,
            },
            (None, None) => {
                return Err(PortError::permanent(
                    MALFORMED,
                    format!(
                        "ARM accepted {what} ({}) without an Azure-AsyncOperation or Location \
                         header to follow",
                        answer.status
                    ),
                ));
            }
        };
        Ok(ArmReply::Accepted(operation))
    }

    /// The final `GET` of a resource a `PUT` created (201 without an operation to follow).
    async fn final_get(
        &self,
        request: &ArmRequest,
        url: &str,
        what: &str,
    ) -> Result<ArmReply, PortError> {
        let answer = self.send(Method::Get, url, None, what).await?;
        if answer.status != 200 {
            return Err(answer.error(&get(request.path.clone())));
        }
        match provisioning_state(&answer.json(what)?) {
            Some(state @ ("Failed" | "Canceled")) => Err(provisioning_failed(what, state)),
            _ => Ok(ArmReply::Completed),
        }
    }

    /// The final `GET` of the resource a `PUT`'s operation created, once the operation
    /// succeeded: `Succeeded` only if the resource's `provisioningState` is `Succeeded` (or
    /// absent). `resource` is a path and query, read on the management endpoint only.
    async fn resource_succeeded(&self, resource: &str) -> Result<PollReply, PortError> {
        let path_and_query = url_path_and_query(resource);
        let url = format!(
            "{}{path_and_query}",
            self.options.endpoint.trim_end_matches('/')
        );
        let path = url_path(resource);
        let what = format!("GET {path} (the resource of a finished operation)");
        let answer = self.send(Method::Get, &url, None, &what).await?;
        if answer.status != 200 {
            return Err(answer.error(&get(path)));
        }
        match provisioning_state(&answer.json(&what)?) {
            None | Some("Succeeded") => Ok(PollReply::Succeeded),
            Some(state @ ("Failed" | "Canceled")) => Err(provisioning_failed(&what, state)),
            // The operation is done but the resource is still settling (`Updating`,
            // `Creating`, …): not an error, the operation is still running as far as the
            // caller is concerned; the next poll reads both again.
            Some(state) => {
                tracing::debug!(%state, "{what}: provisioning not finished; polling again");
                Ok(PollReply::Running {
                    retry_after: answer.retry_after,
                })
            }
        }
    }
}

/// The code of a resource whose provisioning ended `Failed` or `Canceled`.
pub const PROVISIONING_FAILED: &str = "arm:ProvisioningFailed";

fn provisioning_state(body: &Value) -> Option<&str> {
    body.get("properties")
        .and_then(|p| p.get("provisioningState"))
        .and_then(Value::as_str)
}

fn provisioning_failed(what: &str, state: &str) -> PortError {
    PortError::permanent(
        PortErrorKind::Other(PROVISIONING_FAILED.to_owned()),
        format!("{what}: the resource's provisioningState is {state}"),
    )
}

/// The timer as a clock, for the token cache.
struct TimerClock(Arc<dyn Timer>);

impl crate::time::Clock for TimerClock {
    fn now(&self) -> crate::time::Timestamp {
        self.0.now()
    }
}

/// A `GET` of `path` (under the management endpoint), as [`crate::arm::errors`] reads the
/// request an answer came from (the permission a 401/403 needs is derived from it).
fn get(path: String) -> ArmRequest {
    ArmRequest {
        method: Method::Get,
        path,
        api_version: API_VERSION,
        body: None,
    }
}

/// What follows the authority of an absolute URL: its path and query (`/` when none).
fn url_path_and_query(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.find('/').map_or("/", |at| &rest[at..])
}

/// The path of an absolute URL (what follows the authority, without the query).
fn url_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = rest.find('/').map_or("/", |at| &rest[at..]);
    path.split('?').next().unwrap_or("/").to_owned()
}

/// A failed or canceled operation as an error: a SQL Server error number that ARM passes on
/// as the code is `sql:<number>`, any other code `arm:<status>:<code>`.
fn ended(status: u16, outcome: &str, code: Option<String>, message: &str) -> PortError {
    let code = code.unwrap_or_else(|| format!("Operation{outcome}"));
    let kind = if !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()) {
        code.parse::<u32>()
            .map(PortErrorKind::Sql)
            .unwrap_or(PortErrorKind::Arm { status, code })
    } else {
        PortErrorKind::Arm { status, code }
    };
    PortError::permanent(
        kind,
        format!("the ARM operation ended {outcome}: {message}"),
    )
}

#[async_trait]
impl ManagedInstance for ArmManagedInstance {
    async fn begin(&self, op: &InstanceOp) -> Result<ArmReply, PortError> {
        let request = arm::request(op, &self.instance);
        let url = request.url(&self.options.endpoint);
        let what = format!("{} {}", request.method, request.path);
        let answer = self
            .send(request.method, &url, request.body.as_ref(), &what)
            .await?;
        if !answer.is_success() {
            return Err(answer.error(&request));
        }
        if matches!(op, InstanceOp::GetEndpointCertificate) {
            if answer.status != 200 {
                return Err(answer.error(&request));
            }
            return view::public_blob(&answer.json(&what)?).map(ArmReply::PublicKey);
        }
        let resource = arm::put_resource(op, &self.instance);
        match (request.method, answer.status) {
            (_, 202) => Self::accepted(&answer, &what, resource),
            (Method::Put, 201)
                if answer.azure_async_operation.is_some() || answer.location.is_some() =>
            {
                Self::accepted(&answer, &what, resource)
            }
            (Method::Put, 201) => self.final_get(&request, &url, &what).await,
            _ => Ok(ArmReply::Completed),
        }
    }

    async fn poll(&self, operation: &OperationRef) -> Result<PollReply, PortError> {
        let what = "the operation's status";
        // The bearer token goes to the management endpoint only: the operation's path and
        // query are followed there, whatever host the header named (on ARM it is the same
        // host; a kept URL from another process or a hostile header cannot redirect the
        // token).
        let url = format!(
            "{}{}",
            self.options.endpoint.trim_end_matches('/'),
            url_path_and_query(&operation.url)
        );
        let answer = self.send(Method::Get, &url, None, what).await?;
        let request = get(url_path(&operation.url));
        let running = PollReply::Running {
            retry_after: answer.retry_after,
        };
        let reply = match operation.kind {
            OperationKind::Location => match answer.status {
                202 => running,
                200 | 201 | 204 => PollReply::Succeeded,
                _ => return Err(answer.error(&request)),
            },
            OperationKind::AzureAsyncOperation => {
                if !answer.is_success() {
                    return Err(answer.error(&request));
                }
                match view::operation_status(&answer.json(what)?)? {
                    OperationStatus::Running => running,
                    OperationStatus::Succeeded => PollReply::Succeeded,
                    OperationStatus::Ended {
                        status,
                        code,
                        message,
                    } => return Err(ended(answer.status, &status, code, &message)),
                }
            }
        };
        match (&reply, &operation.resource) {
            (PollReply::Succeeded, Some(resource)) => self.resource_succeeded(resource).await,
            _ => Ok(reply),
        }
    }

    async fn link_state(&self, link: &LinkName) -> Result<SideView, PortError> {
        let path = format!("distributedAvailabilityGroups/{}", segment(link.as_str()));
        let what = format!("GET {path}");
        let answer = self
            .send(Method::Get, &self.resource_url(&path), None, &what)
            .await?;
        match answer.status {
            404 => return Ok(SideView::unknown()),
            200 => {}
            _ => return Err(answer.error(&get(format!("{}/{path}", self.instance)))),
        }
        let body = answer.json(&what)?;
        let instance_url = format!(
            "{}{}?api-version={API_VERSION}",
            self.options.endpoint, self.instance
        );
        let what = "GET the managed instance";
        let instance = self.send(Method::Get, &instance_url, None, what).await?;
        if instance.status != 200 {
            return Err(instance.error(&get(self.instance.to_string())));
        }
        view::link_view(&body, view::update_policy(&instance.json(what)?))
    }

    async fn full_backups(&self, databases: &[DatabaseName]) -> Result<Vec<FullBackup>, PortError> {
        let _ = databases;
        Err(PortError::permanent(
            UNSUPPORTED,
            "ARM cannot read the instance's msdb.dbo.backupset; give the instance's endpoint \
             so the T-SQL reads go to it (sqlserver::instance_reads::WithInstanceTsql)",
        ))
    }

    async fn instance_fqdn(&self) -> Result<Option<crate::names::MiFqdn>, PortError> {
        let instance = self.managed_instance().await?;
        Ok(instance
            .properties
            .fully_qualified_domain_name
            .and_then(|f| crate::names::MiFqdn::new(f).ok()))
    }
}
