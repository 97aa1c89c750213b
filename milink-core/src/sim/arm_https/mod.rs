//! The simulated managed instance over HTTPS: the world's own instance served through the
//! Azure Resource Manager REST API on loopback, so a real ARM client (reqwest with rustls) is
//! tested end to end against it, as [`super::tds`] does for SQL Server.
//!
//! Each request is parsed back, by the REST API's grammar (path segments, `api-version`, JSON
//! body), into the [`InstanceOp`](crate::lifecycle::InstanceOp) it expresses and answered through
//! the same world functions [`SimManagedInstance`](super::SimManagedInstance) uses (the fault
//! plan's call, then `begin_instance` / `poll_operation` / `arm_link_view`), so the in-process and
//! HTTPS instances cannot drift. The world is locked per request, never across an await.
//!
//! Routes served (all under `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Sql/
//! managedInstances/{mi}` unless noted; keywords match case-insensitively, names are
//! percent-decoded):
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `` | the managed instance (FQDN, `dnsZone`, sku, storage, `databaseFormat`, `hybridSecondaryUsage`) |
//! | GET | `/distributedAvailabilityGroups` | `{value: [DistributedAvailabilityGroup]}` |
//! | GET | `/distributedAvailabilityGroups/{dag}` | the DAG (`linkMode` with the preview api-version) |
//! | PUT | `/distributedAvailabilityGroups/{dag}` | `PutLink`: 200 or 202 |
//! | PATCH | `/distributedAvailabilityGroups/{dag}` with `replicationMode` | `SetReplicationMode`: 200 or 202 |
//! | PATCH | `/distributedAvailabilityGroups/{dag}` with `databases` | `SetLinkDatabases` (MultiDatabase links): 200 or 202 |
//! | DELETE | `/distributedAvailabilityGroups/{dag}` | `DeleteLink`: 202 or 204 |
//! | POST | `/distributedAvailabilityGroups/{dag}/failover` | `Failover`: 202 |
//! | POST | `/distributedAvailabilityGroups/{dag}/setRole` | `SetRole`: 202 |
//! | GET | `/serverTrustCertificates` | `{value: [ServerTrustCertificate]}` |
//! | GET | `/serverTrustCertificates/{name}` | the certificate |
//! | PUT | `/serverTrustCertificates/{name}` | `PutServerTrustCertificate`: 200 or 202 |
//! | DELETE | `/serverTrustCertificates/{name}` | `DeleteServerTrustCertificate`: 202 or 204 |
//! | GET | `/endpointCertificates/DATABASE_MIRRORING` | `GetEndpointCertificate`: 200 |
//! | GET | `/subscriptions/{sub}/providers/Microsoft.Sql/locations/{loc}/{coll}OperationResults/{id}` | `Location` polling: 202 while running, then 200 (resource) / 204, or the error |
//! | GET | `/subscriptions/{sub}/providers/Microsoft.Sql/locations/{loc}/{coll}AzureAsyncOperation/{id}` | status document `InProgress` / `Succeeded` / `Failed` |
//!
//! `{coll}` is `distributedAvailabilityGroups` or `serverTrustCertificates`. Accepted
//! api-versions: [`API_VERSION`](crate::arm::API_VERSION) and
//! [`PREVIEW_API_VERSION`](crate::arm::PREVIEW_API_VERSION) (the two the reference specs cover);
//! any other is 400 `InvalidApiVersionParameter`, none is 400 `MissingApiVersionParameter`.
//! A 202 carries `Location` and `Retry-After`, and for PUT and PATCH also
//! `Azure-AsyncOperation`; their URLs point at this server (the world builds them on
//! `https://management.azure.com`, the server rewrites that base to its own).
//!
//! A session whose managed instance port reaches this server counts its calls with
//! [`InFlight`](super::wire::InFlight) and sleeps on a [`WireClock`](super::wire::WireClock),
//! exactly as over TDS: the server itself only locks the world while it answers a request.
//!
//! Every request body is checked against its operation's schema in the official spec of the
//! request's api-version before it is interpreted ([`SpecBodyCheck`], the default
//! [`BodyCheck`]): a body ARM would refuse is answered 400 `InvalidRequestContent` naming each
//! violation, and the world is not touched. Answers are the [`crate::arm::models`] the client
//! reads, serialized. The server counts the requests it receives by method and route kind
//! ([`ArmHttpsServer::requests`]).
//!
//! Errors use the ARM envelope `{"error": {"code", "message"}}` ([`crate::arm::models::ErrorResponse`]); a SQL engine error of the link
//! (`sql:41976`, …) is reported with its number as the code (`"41976"`), as Microsoft.Sql does
//! for engine errors. A fault plan's connection drop, and a lost response (after the operation
//! took effect), close the connection without an answer.

mod arc;
mod arc_resources;
mod body;
mod counts;
mod handle;
mod resources;
mod route;
mod server;
#[cfg(test)]
mod tests;
#[cfg(all(test, feature = "arm"))]
mod tests_arc;
#[cfg(all(test, feature = "arm"))]
mod tests_arc_route;
#[cfg(test)]
mod tests_budget;
#[cfg(test)]
mod tests_refusals;
#[cfg(test)]
mod tests_session;
#[cfg(test)]
mod tests_spec;

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::secret::Secret;

pub use counts::{RequestCounter, RequestCounts, difference, route_kind};
pub use server::ArmHttpsServer;

/// Who may call: every request needs `Authorization: Bearer <token>`.
#[derive(Clone)]
pub enum TokenPolicy {
    /// Only this exact token (a shared secret the test or the harness hands the client).
    SharedSecret(Secret),
    /// Any non-empty token meant for Azure Resource Manager: an opaque token is accepted; a JWT
    /// (three base64url parts) must carry an `aud` of `https://management.azure.com/`,
    /// `https://management.azure.com` or `https://management.core.windows.net/`. Signatures
    /// are not checked: this is a simulator.
    AnyManagementToken,
}

impl fmt::Debug for TokenPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenPolicy::SharedSecret(_) => f.write_str("SharedSecret(***)"),
            TokenPolicy::AnyManagementToken => f.write_str("AnyManagementToken"),
        }
    }
}

/// A request body as the server read it, for a [`BodyCheck`].
#[derive(Debug, Clone, Copy)]
pub struct BodyToCheck<'a> {
    /// The REST API's operation id, e.g. `DistributedAvailabilityGroups_CreateOrUpdate`.
    pub operation_id: &'static str,
    /// The request's api-version.
    pub api_version: &'a str,
    /// The parsed JSON body.
    pub body: &'a Value,
}

/// The hook where a validator of request bodies plugs in. It runs after the body parsed as JSON
/// and before the server interprets it; a refusal is answered 400 `InvalidRequestContent` with
/// its message, and the world is not touched. The default is [`SpecBodyCheck`].
pub trait BodyCheck: Send + Sync {
    /// `Err(message)` refuses the body.
    fn check(&self, request: &BodyToCheck<'_>) -> Result<(), String>;
}

/// A [`BodyCheck`] that accepts every body (the server still refuses what it cannot read).
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAllBodies;

impl BodyCheck for AcceptAllBodies {
    fn check(&self, _request: &BodyToCheck<'_>) -> Result<(), String> {
        Ok(())
    }
}

/// The default [`BodyCheck`]: the body against its operation's schema in the official spec of
/// the request's api-version ([`crate::arm::spec::validate_operation`]), as ARM validates it:
/// unknown and read-only properties, wrong types, values outside an enum and missing required
/// properties are refused, every violation named in the message.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpecBodyCheck;

impl BodyCheck for SpecBodyCheck {
    fn check(&self, request: &BodyToCheck<'_>) -> Result<(), String> {
        crate::arm::spec::validate_operation(
            request.operation_id,
            request.api_version,
            Some(request.body),
        )
        .map_err(|violations| {
            let named: Vec<String> = violations.iter().map(ToString::to_string).collect();
            format!("the body does not fit the spec: {}", named.join("; "))
        })
    }
}

/// How the server behaves.
#[derive(Clone)]
pub struct ArmServerConfig {
    /// Which bearer tokens are accepted.
    pub tokens: TokenPolicy,
    /// The body validator (default [`SpecBodyCheck`]).
    pub body_check: Arc<dyn BodyCheck>,
    /// The most connections served at once; more are closed at once.
    pub max_connections: usize,
    /// The largest request body read, in bytes (larger: 413).
    pub max_body_bytes: usize,
    /// The subscription's ARM read bucket when the server starts. As ARM's, it holds at most
    /// 250 reads and is refilled at 25 a second (on the world's clock); every `GET` takes one,
    /// and every answer to a `GET` says how many are left in
    /// `x-ms-ratelimit-remaining-subscription-reads`. The server reports the count and does
    /// not throttle (429s come from the fault plan).
    pub reads_at_start: u32,
}

/// ARM's read bucket per subscription, principal and region: 250 reads.
pub const READ_BUCKET_CAPACITY: u32 = 250;
/// Its refill: 25 reads a second.
pub const READ_BUCKET_REFILL_PER_SECOND: u32 = 25;

impl ArmServerConfig {
    /// A configuration that accepts only `token`.
    pub fn with_token(token: impl Into<Secret>) -> Self {
        ArmServerConfig {
            tokens: TokenPolicy::SharedSecret(token.into()),
            ..ArmServerConfig::default()
        }
    }
}

impl Default for ArmServerConfig {
    /// Any management token, bodies checked against the official specs, 64 connections, 1 MiB
    /// bodies.
    fn default() -> Self {
        ArmServerConfig {
            tokens: TokenPolicy::AnyManagementToken,
            body_check: Arc::new(SpecBodyCheck),
            max_connections: 64,
            max_body_bytes: 1 << 20,
            reads_at_start: READ_BUCKET_CAPACITY,
        }
    }
}

impl fmt::Debug for ArmServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArmServerConfig")
            .field("tokens", &self.tokens)
            .field("max_connections", &self.max_connections)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("reads_at_start", &self.reads_at_start)
            .finish_non_exhaustive()
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ArmServerError {
    /// Binding the socket failed.
    #[error("arm https server: {0}")]
    Io(#[from] std::io::Error),
    /// Generating the certificate or configuring TLS failed.
    #[error("arm https server: tls: {0}")]
    Tls(String),
}
