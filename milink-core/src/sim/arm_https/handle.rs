//! One request against the world: routed, its body parsed back into the [`InstanceOp`] it
//! expresses, and answered through the same world functions as
//! [`SimManagedInstance`](crate::sim::SimManagedInstance). Synchronous: the world is locked for
//! the request only.

use serde_json::{Value, json};

use crate::arm::{
    API_VERSION, AUTHORIZATION_API_VERSION, MANAGEMENT_ENDPOINT, NETWORK_API_VERSION,
    PREVIEW_API_VERSION, models,
};
use crate::lifecycle::{
    ArmFailoverType, AvailabilityMode, InstanceOp, OperationKind, OperationRef, RoleChangeType,
    Side,
};
use crate::names::{CertificateName, LinkName};
use crate::ports::{ArmReply, PollReply};

use super::body::{self, decode_hex, enum_value, invalid_content, put_link, required};
use super::resources::{self, Reply, error_reply, retry_after_secs};
use super::route::{self, Collection, InstanceScope, Route, Target};
use super::{BodyCheck, BodyToCheck};
use crate::sim::Sim;
use crate::sim::faults::{Call, InstanceCall};
use crate::sim::world::World;

/// A request as the server read it (already authenticated).
pub(crate) struct Request<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) body: &'a [u8],
}

/// What the handler needs besides the world.
pub(crate) struct Context<'a> {
    pub(crate) sim: &'a Sim,
    /// `https://127.0.0.1:{port}`: operation URLs are rewritten onto it.
    pub(crate) base_url: &'a str,
    pub(crate) body_check: &'a dyn BodyCheck,
}

fn not_found(what: &str) -> Reply {
    Reply::error(
        404,
        "ResourceNotFound",
        format!("The Resource '{what}' was not found."),
    )
}

/// Answers one request.
pub(crate) fn handle(cx: &Context<'_>, req: &Request<'_>) -> Reply {
    if super::arc::is_arc(req.path) {
        return super::arc::handle(cx, req);
    }
    let Some(route) = route::parse_path(req.path) else {
        return Reply::error(
            404,
            "NotFound",
            format!(
                "No HTTP resource was found that matches the request URI '{}'.",
                req.path
            ),
        );
    };
    let api_version = match route::api_version(req.query) {
        Err(()) => {
            return Reply::error(
                400,
                "InvalidRequestContent",
                "The query string is malformed.",
            );
        }
        Ok(None) => {
            return Reply::error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            );
        }
        Ok(Some(v)) => v,
    };
    // Microsoft.Authorization and Microsoft.Network have api-versions of their own.
    let supported: &[&'static str] = match &route {
        Route::Instance(_, Target::CallerPermissions) => &[AUTHORIZATION_API_VERSION],
        Route::Subnet { .. } => &[NETWORK_API_VERSION],
        _ => &[API_VERSION, PREVIEW_API_VERSION],
    };
    let Some(api_version) = supported.iter().copied().find(|v| *v == api_version) else {
        return Reply::error(
            400,
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{api_version}' is invalid. The supported versions are '{}'.",
                supported.join(",")
            ),
        );
    };
    match route {
        Route::FailoverGroups {
            subscription,
            resource_group,
            location,
        } => {
            if req.method != "GET" {
                return method_not_allowed(req.method);
            }
            let w = cx.sim.lock();
            let id = &w.instance.id;
            let ours = subscription.eq_ignore_ascii_case(id.subscription_id())
                && resource_group.eq_ignore_ascii_case(id.resource_group())
                && location.eq_ignore_ascii_case(&w.instance.location);
            Reply::json(200, resources::failover_groups(&w.instance, ours))
        }
        Route::Subnet {
            subscription,
            resource_group,
            vnet,
            subnet,
        } => {
            if req.method != "GET" {
                return method_not_allowed(req.method);
            }
            let w = cx.sim.lock();
            let id = format!(
                "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Network/virtualNetworks/{vnet}/subnets/{subnet}"
            );
            match &w.instance.settings.subnet_id {
                Some(own) if own.eq_ignore_ascii_case(&id) => {
                    Reply::json(200, resources::subnet(&w.instance, own))
                }
                _ => not_found(&format!(
                    "Microsoft.Network/virtualNetworks/{vnet}/subnets/{subnet}"
                )),
            }
        }
        Route::Instance(scope, target) => {
            if let Err(reply) = check_scope(cx.sim, &scope) {
                return reply;
            }
            instance_route(cx, req, api_version, target)
        }
        Route::Operation {
            subscription,
            location,
            collection,
            id,
            status,
        } => poll(
            cx,
            &subscription,
            &location,
            collection,
            &id,
            status,
            api_version,
        ),
    }
}

fn check_scope(sim: &Sim, scope: &InstanceScope) -> Result<(), Reply> {
    let w = sim.lock();
    let id = &w.instance.id;
    if !scope
        .subscription
        .eq_ignore_ascii_case(id.subscription_id())
    {
        return Err(Reply::error(
            404,
            "SubscriptionNotFound",
            format!(
                "The subscription '{}' could not be found.",
                scope.subscription
            ),
        ));
    }
    if !scope
        .resource_group
        .eq_ignore_ascii_case(id.resource_group())
        || !scope.instance.eq_ignore_ascii_case(id.name())
    {
        return Err(Reply::error(
            404,
            "ResourceNotFound",
            format!(
                "The Resource 'Microsoft.Sql/managedInstances/{}' under resource group '{}' was \
                 not found.",
                scope.instance, scope.resource_group
            ),
        ));
    }
    Ok(())
}

fn method_not_allowed(method: &str) -> Reply {
    Reply::error(
        405,
        "MethodNotAllowed",
        format!("The requested resource does not support http method '{method}'."),
    )
}

fn instance_route(cx: &Context<'_>, req: &Request<'_>, api: &'static str, target: Target) -> Reply {
    let dag_path =
        |name: &str| format!("Microsoft.Sql/managedInstances/distributedAvailabilityGroups/{name}");
    match (req.method, target) {
        ("GET", Target::Instance) => {
            Reply::json(200, resources::managed_instance(&cx.sim.lock().instance))
        }
        ("GET", Target::Dags) => list_dags(cx.sim, api),
        ("GET", Target::Databases) => {
            let w = cx.sim.lock();
            let value: Vec<Value> = w
                .instance
                .databases
                .iter()
                .map(|(name, db)| resources::managed_database(&w.instance, name.as_str(), db))
                .collect();
            Reply::json(200, json!({ "value": value }))
        }
        ("GET", Target::Dag(name)) => get_dag(cx.sim, &name, api),
        ("PUT", Target::Dag(name)) => {
            let link = match LinkName::new(name.as_str()) {
                Ok(l) => l,
                Err(e) => return Reply::error(400, "InvalidParameterValue", e.to_string()),
            };
            body_then(
                cx,
                req,
                "DistributedAvailabilityGroups_CreateOrUpdate",
                api,
                |b| put_link(link, b, api),
            )
        }
        ("PATCH", Target::Dag(name)) => {
            let Ok(link) = LinkName::new(name.as_str()) else {
                return not_found(&dag_path(&name));
            };
            body_then(cx, req, "DistributedAvailabilityGroups_Update", api, |b| {
                let props = b.get("properties").and_then(Value::as_object);
                let mode = props.and_then(|p| p.get("replicationMode"));
                let databases = props.and_then(|p| p.get("databases"));
                match (mode, databases) {
                    (Some(v), None) => {
                        let mode = enum_value(
                            v,
                            "replicationMode",
                            &[
                                ("Sync", AvailabilityMode::SynchronousCommit),
                                ("Async", AvailabilityMode::AsynchronousCommit),
                            ],
                        )?;
                        Ok(InstanceOp::SetReplicationMode { link, mode })
                    }
                    (None, Some(v)) => Ok(InstanceOp::SetLinkDatabases {
                        link,
                        databases: body::database_list(v)?,
                    }),
                    _ => Err(invalid_content(
                        "properties must hold either replicationMode or databases (the \
                         properties this instance updates, one per request)",
                    )),
                }
            })
        }
        ("DELETE", Target::Dag(name)) => match LinkName::new(name.as_str()) {
            Ok(link) => begin(cx, api, &InstanceOp::DeleteLink { link }),
            // A name no link can have: nothing to delete.
            Err(_) => Reply::empty(204),
        },
        ("POST", Target::DagFailover(name)) => {
            let Ok(link) = LinkName::new(name.as_str()) else {
                return not_found(&dag_path(&name));
            };
            body_then(
                cx,
                req,
                "DistributedAvailabilityGroups_Failover",
                api,
                |b| {
                    let failover_type = enum_value(
                        required(b, "failoverType")?,
                        "failoverType",
                        &[
                            ("Planned", ArmFailoverType::Planned),
                            ("ForcedAllowDataLoss", ArmFailoverType::ForcedAllowDataLoss),
                        ],
                    )?;
                    Ok(InstanceOp::Failover {
                        link,
                        failover_type,
                    })
                },
            )
        }
        ("POST", Target::DagSetRole(name)) => {
            let Ok(link) = LinkName::new(name.as_str()) else {
                return not_found(&dag_path(&name));
            };
            body_then(cx, req, "DistributedAvailabilityGroups_SetRole", api, |b| {
                let role = enum_value(
                    required(b, "instanceRole")?,
                    "instanceRole",
                    &[
                        ("Primary", Side::ManagedInstance),
                        ("Secondary", Side::SqlServer),
                    ],
                )?;
                let change = enum_value(
                    required(b, "roleChangeType")?,
                    "roleChangeType",
                    &[
                        ("Planned", RoleChangeType::Planned),
                        ("Forced", RoleChangeType::Forced),
                    ],
                )?;
                Ok(InstanceOp::SetRole { link, role, change })
            })
        }
        ("GET", Target::TrustCertificates) => {
            let w = cx.sim.lock();
            let value: Vec<Value> = w
                .instance
                .trust_certificates
                .iter()
                .map(|(n, der)| resources::trust_certificate(&w.instance, n, der))
                .collect();
            Reply::json(200, json!({"value": value}))
        }
        ("GET", Target::TrustCertificate(name)) => {
            let w = cx.sim.lock();
            match w.instance.trust_certificates.get(&name) {
                Some(der) => {
                    Reply::json(200, resources::trust_certificate(&w.instance, &name, der))
                }
                None => not_found(&format!(
                    "Microsoft.Sql/managedInstances/serverTrustCertificates/{name}"
                )),
            }
        }
        ("PUT", Target::TrustCertificate(name)) => {
            let cert = match CertificateName::new(name.as_str()) {
                Ok(c) => c,
                Err(e) => return Reply::error(400, "InvalidParameterValue", e.to_string()),
            };
            body_then(
                cx,
                req,
                "ServerTrustCertificates_CreateOrUpdate",
                api,
                |b| {
                    let blob = b
                        .get("properties")
                        .and_then(|p| p.get("publicBlob"))
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            invalid_content("properties.publicBlob (string) is required")
                        })?;
                    let der = decode_hex(blob).ok_or_else(|| {
                        invalid_content("properties.publicBlob is not hexadecimal")
                    })?;
                    Ok(InstanceOp::PutServerTrustCertificate {
                        name: cert,
                        public_blob: der,
                    })
                },
            )
        }
        ("DELETE", Target::TrustCertificate(name)) => match CertificateName::new(name.as_str()) {
            Ok(name) => begin(cx, api, &InstanceOp::DeleteServerTrustCertificate { name }),
            Err(_) => Reply::empty(204),
        },
        ("GET", Target::EndpointCertificate(kind)) => {
            if kind.eq_ignore_ascii_case("DATABASE_MIRRORING") {
                begin(cx, api, &InstanceOp::GetEndpointCertificate)
            } else {
                not_found(&format!(
                    "Microsoft.Sql/managedInstances/endpointCertificates/{kind}"
                ))
            }
        }
        ("GET", Target::EncryptionProtector(name)) => {
            if name.eq_ignore_ascii_case("current") {
                Reply::json(
                    200,
                    resources::encryption_protector(&cx.sim.lock().instance),
                )
            } else {
                not_found(&format!(
                    "Microsoft.Sql/managedInstances/encryptionProtector/{name}"
                ))
            }
        }
        ("GET", Target::CallerPermissions) => {
            Reply::json(200, resources::caller_permissions(&cx.sim.lock().instance))
        }
        (method, _) => method_not_allowed(method),
    }
}

/// Parses the JSON body, runs the [`BodyCheck`], interprets it and begins the operation.
fn body_then(
    cx: &Context<'_>,
    req: &Request<'_>,
    operation_id: &'static str,
    api: &'static str,
    interpret: impl FnOnce(&Value) -> Result<InstanceOp, Reply>,
) -> Reply {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return invalid_content("the request has no body");
    }
    let body: Value = match serde_json::from_slice(req.body) {
        Ok(v) => v,
        Err(e) => return invalid_content(e),
    };
    if !body.is_object() {
        return invalid_content("the body must be a JSON object");
    }
    let check = BodyToCheck {
        operation_id,
        api_version: api,
        body: &body,
    };
    if let Err(message) = cx.body_check.check(&check) {
        return invalid_content(message);
    }
    match interpret(&body) {
        Ok(op) => begin(cx, api, &op),
        Err(reply) => reply,
    }
}

/// The world's URL with this server's base.
fn rewrite(base_url: &str, url: &str) -> String {
    match url.strip_prefix(MANAGEMENT_ENDPOINT) {
        Some(rest) => format!("{base_url}{rest}"),
        None => url.to_owned(),
    }
}

/// Begins `op` exactly as `SimManagedInstance::begin` does, and answers it over HTTP.
fn begin(cx: &Context<'_>, api: &'static str, op: &InstanceOp) -> Reply {
    let mut w = cx.sim.lock();
    let latency = w.config.arm.request;
    let fate = match w.enter_call(Call::Instance(InstanceCall::of(op)), latency) {
        Ok(fate) => fate,
        Err(e) => return error_reply(&e),
    };
    let reply = w.begin_instance(op);
    if fate.lose_response {
        return Reply::Drop;
    }
    match reply {
        Err(e) => error_reply(&e),
        Ok(ArmReply::PublicKey(der)) => {
            Reply::json(200, resources::endpoint_certificate(&w.instance, &der))
        }
        Ok(ArmReply::Completed) => completed(&w, op, api),
        Ok(ArmReply::Accepted(operation)) => {
            let location = rewrite(cx.base_url, &operation.url);
            let mut reply = Reply::empty(202)
                .with_header("Location", location.clone())
                .with_header("Retry-After", retry_after_secs(w.config.arm.retry_after));
            if matches!(
                op,
                InstanceOp::PutLink { .. }
                    | InstanceOp::PutServerTrustCertificate { .. }
                    | InstanceOp::SetReplicationMode { .. }
            ) {
                let status = location.replacen("OperationResults/", "AzureAsyncOperation/", 1);
                reply = reply.with_header("Azure-AsyncOperation", status);
            }
            reply
        }
    }
}

/// The answer of an operation that is done: the resource (200) or nothing (204).
fn completed(w: &World, op: &InstanceOp, api: &str) -> Reply {
    let dag = |link: &LinkName| match w.instance.links.get(link) {
        Some(l) => {
            let view = w.side_view(Side::ManagedInstance, link, &l.properties.databases);
            Reply::json(
                200,
                resources::dag(&w.instance, link.as_str(), l, &view, api),
            )
        }
        None => Reply::empty(204),
    };
    match op {
        InstanceOp::PutLink { link, .. }
        | InstanceOp::SetReplicationMode { link, .. }
        | InstanceOp::SetLinkDatabases { link, .. }
        | InstanceOp::Failover { link, .. }
        | InstanceOp::SetRole { link, .. } => dag(link),
        InstanceOp::PutServerTrustCertificate { name, .. } => {
            match w.instance.trust_certificates.get(name.as_str()) {
                Some(der) => Reply::json(
                    200,
                    resources::trust_certificate(&w.instance, name.as_str(), der),
                ),
                None => Reply::empty(204),
            }
        }
        InstanceOp::GetEndpointCertificate => Reply::json(
            200,
            resources::endpoint_certificate(&w.instance, &w.instance.endpoint_certificate),
        ),
        InstanceOp::DeleteLink { .. } | InstanceOp::DeleteServerTrustCertificate { .. } => {
            Reply::empty(204)
        }
    }
}

/// The DAG as ARM shows it: one read of the link, as `SimManagedInstance::link_state`.
fn get_dag(sim: &Sim, name: &str, api: &str) -> Reply {
    let missing = || {
        not_found(&format!(
            "Microsoft.Sql/managedInstances/distributedAvailabilityGroups/{name}"
        ))
    };
    let Ok(link) = LinkName::new(name) else {
        return missing();
    };
    let mut w = sim.lock();
    let latency = w.config.arm.request;
    if let Err(e) = w.enter_call(Call::InstanceLinkState, latency) {
        return error_reply(&e);
    }
    let view = w.arm_link_view(&link);
    match w.instance.links.get(&link) {
        Some(l) => Reply::json(200, resources::dag(&w.instance, name, l, &view, api)),
        None => missing(),
    }
}

fn list_dags(sim: &Sim, api: &str) -> Reply {
    let mut w = sim.lock();
    let latency = w.config.arm.request;
    if let Err(e) = w.enter_call(Call::InstanceLinkState, latency) {
        return error_reply(&e);
    }
    let links: Vec<LinkName> = w.instance.links.keys().cloned().collect();
    let mut value = Vec::with_capacity(links.len());
    for link in links {
        let view = w.arm_link_view(&link);
        if let Some(l) = w.instance.links.get(&link) {
            value.push(resources::dag(&w.instance, link.as_str(), l, &view, api));
        }
    }
    Reply::json(200, json!({"value": value}))
}

/// Polls an operation exactly as `SimManagedInstance::poll` does.
fn poll(
    cx: &Context<'_>,
    subscription: &str,
    location: &str,
    collection: Collection,
    id: &str,
    status: bool,
    api: &str,
) -> Reply {
    let mut w = cx.sim.lock();
    if !subscription.eq_ignore_ascii_case(w.instance.id.subscription_id())
        || !location.eq_ignore_ascii_case(&w.instance.location)
    {
        return not_found(&format!("operation {id}"));
    }
    let coll = collection.as_str();
    let path =
        format!("/subscriptions/{subscription}/providers/Microsoft.Sql/locations/{location}");
    // The URL the world handed out: the in-process instance polls exactly this.
    let operation = OperationRef {
        url: format!(
            "{MANAGEMENT_ENDPOINT}{path}/{coll}OperationResults/{id}?api-version={API_VERSION}"
        ),
        kind: if status {
            OperationKind::AzureAsyncOperation
        } else {
            OperationKind::Location
        },
        resource: None,
    };
    let latency = w.config.arm.request;
    if let Err(e) = w.enter_call(Call::Poll, latency) {
        return error_reply(&e);
    }
    let result = w.poll_operation(&operation);
    let Some(op) = w.instance.operations.get(id).cloned() else {
        return match result {
            Err(e) => error_reply(&e),
            Ok(_) => not_found(&format!("operation {id}")),
        };
    };
    if status {
        let (state, error, retry) = match &result {
            Ok(PollReply::Running { retry_after }) => {
                (models::OperationState::InProgress, None, *retry_after)
            }
            Ok(PollReply::Succeeded) => (models::OperationState::Succeeded, None, None),
            Err(e) => {
                let (_, code) =
                    resources::status_and_code(e).unwrap_or((500, "InternalServerError".into()));
                let detail = models::ErrorDetail {
                    code: Some(code),
                    message: Some(e.message.clone()),
                    ..models::ErrorDetail::default()
                };
                (models::OperationState::Failed, Some(detail), None)
            }
        };
        let done = state.is_terminal();
        let mut doc = resources::model_json(&models::OperationStatus {
            name: Some(id.to_owned()),
            status: state,
            error,
            start_time: Some(op.started.to_string()),
            percent_complete: None,
        });
        // The status document's `id` and `endTime`, which milink's model does not read.
        if let Some(o) = doc.as_object_mut() {
            o.insert(
                "id".into(),
                json!(format!("{path}/{coll}AzureAsyncOperation/{id}")),
            );
            if done {
                o.insert("endTime".into(), json!(op.completes_at.to_string()));
            }
        }
        let reply = Reply::json(200, doc);
        return match retry {
            Some(after) => reply.with_header("Retry-After", retry_after_secs(after)),
            None => reply,
        };
    }
    match result {
        Ok(PollReply::Running { retry_after }) => {
            let url = format!(
                "{}{path}/{coll}OperationResults/{id}?api-version={api}",
                cx.base_url
            );
            let reply = Reply::empty(202).with_header("Location", url);
            match retry_after {
                Some(after) => reply.with_header("Retry-After", retry_after_secs(after)),
                None => reply,
            }
        }
        Ok(PollReply::Succeeded) => completed(&w, &op.op, api),
        Err(e) => error_reply(&e),
    }
}
