//! `Microsoft.AzureArcData` (api-version [`crate::arc::API_VERSION`]) on the simulated HTTPS
//! Azure: the Arc-enabled SQL Server of the world ([`World::arc_instance_id`]) and its
//! long-running operations ([`crate::sim::world::arc`]).
//!
//! | method | path under `…/sqlServerInstances/{name}` | answer |
//! |---|---|---|
//! | GET | `` | the instance ([`World::arc_instance`]) |
//! | GET | `/databases` | `{value: [database]}` |
//! | GET | `/availabilityGroups` | `{value: [availability group]}` |
//! | GET | `/availabilityGroups/{ag}` | the availability group (a link's distributed one too) or 404 |
//! | POST | `/createManagedInstanceLink` | 202 |
//! | POST | `/availabilityGroups/{dag}/failoverMiLink` | 202 |
//! | POST | `/availabilityGroups/{dag}/deleteMiLink` | 202 |
//! | POST | `/runManagedInstanceLinkAssessment` | 202 |
//! | POST | `/getTelemetry` | 202 |
//! | POST | `/runMigrationAssessment` | 200, the job's status; the results appear in the instance later |
//! | GET | `/subscriptions/{s}/providers/Microsoft.AzureArcData/locations/{l}/operationsStatuses/{id}` and the tenant-level `/providers/Microsoft.AzureArcData/locations/{l}/operationStatuses/{id}` | status `Accepted`, `InProgress`, `Succeeded` (result in `properties`), `Failed` (`error`) |
//! | GET | `/subscriptions/{s}/providers/Microsoft.AzureArcData/locations/{l}/operationResults/{id}` | 202 while running, then 200 (result) or 204, or the error |
//!
//! A 202 carries `Azure-AsyncOperation`, `Location` and `Retry-After` as the examples do: the
//! availability group operations' URLs at subscription level, the assessment's and the
//! telemetry's at tenant level. Checks, in ARM's order: the RBAC operation (a fault makes it
//! 403 `AuthorizationFailed`), the body against the spec (the availability group operations
//! through the server's [`super::BodyCheck`]; the instance actions, whose paths are in a spec
//! file that is not copied, against their definition in `sqlServerInstances.json`), the agent
//! (offline: 409 `ArcAgentDisconnected`), then the request's sense (an older extension and
//! several databases: 400 `ExtensionVersionNotSupported`; another managed instance, a link that
//! does not exist or is not SQL Server's to fail over). UNVERIFIED: those codes are the
//! simulator's; the service's are not documented.

use serde_json::{Value, json};

use super::arc_resources::extension_too_old_message;
use super::handle::{Context, Request};
use super::resources::Reply;
use super::route::decode_segment;
use super::{BodyToCheck, route};
use crate::arc::{API_VERSION, ArcInstanceId, PROVIDER};
use crate::names::{AgName, CertificateName, DatabaseName, EndpointName, LinkName, TcpPort};
use crate::sim::world::World;
use crate::sim::world::arc::{ArcLinkPlan, ArcSimOperation, ArcWork, OPERATION_IN_PROGRESS};

/// Whether `path` is one of Arc's.
pub(crate) fn is_arc(path: &str) -> bool {
    path.to_ascii_lowercase()
        .contains("/providers/microsoft.azurearcdata/")
}

/// An Arc path's kind for the request counts: `arc instance`, `arc databases`,
/// `arc availability groups`, `arc availability group`, `arc {action}` (the action as the spec
/// spells it), `arc operation (AzureAsyncOperation)`, `arc operation (Location)`, `arc other`.
pub(crate) fn route_kind(path: &str) -> &'static str {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let instance_at = segs.iter().position(|s| is(s, "sqlServerInstances"));
    let tail: &[&str] = match instance_at {
        Some(at) => segs.get(at + 2..).unwrap_or_default(),
        None => {
            return match segs.get(segs.len().saturating_sub(2)) {
                Some(k) if is(k, "operationsStatuses") || is(k, "operationStatuses") => {
                    "arc operation (AzureAsyncOperation)"
                }
                Some(k) if is(k, "operationResults") => "arc operation (Location)",
                _ => "arc other",
            };
        }
    };
    const ACTIONS: [&str; 6] = [
        "createManagedInstanceLink",
        "runManagedInstanceLinkAssessment",
        "getTelemetry",
        "runMigrationAssessment",
        "failoverMiLink",
        "deleteMiLink",
    ];
    let action = |s: &str| ACTIONS.iter().copied().find(|a| is(s, a));
    match tail {
        [] => "arc instance",
        [d] if is(d, "databases") => "arc databases",
        [a] if is(a, "availabilityGroups") => "arc availability groups",
        [a, _] if is(a, "availabilityGroups") => "arc availability group",
        [x] | [_, _, x] => match action(x) {
            Some("createManagedInstanceLink") => "arc createManagedInstanceLink",
            Some("runManagedInstanceLinkAssessment") => "arc runManagedInstanceLinkAssessment",
            Some("getTelemetry") => "arc getTelemetry",
            Some("runMigrationAssessment") => "arc runMigrationAssessment",
            Some("failoverMiLink") => "arc failoverMiLink",
            Some("deleteMiLink") => "arc deleteMiLink",
            _ => "arc other",
        },
        _ => "arc other",
    }
}

fn is(segment: &str, keyword: &str) -> bool {
    segment.eq_ignore_ascii_case(keyword)
}

fn not_found(what: &str) -> Reply {
    Reply::error(
        404,
        "ResourceNotFound",
        format!("The Resource '{what}' was not found."),
    )
}

fn bad(code: &str, message: impl Into<String>) -> Reply {
    Reply::error(400, code, message)
}

/// Answers one Arc request.
pub(crate) fn handle(cx: &Context<'_>, req: &Request<'_>) -> Reply {
    let segs: Option<Vec<String>> = req
        .path
        .trim_start_matches('/')
        .split('/')
        .map(decode_segment)
        .collect();
    let Some(segs) = segs.filter(|s| s.iter().all(|x| !x.is_empty())) else {
        return not_found(req.path);
    };
    match route::api_version(req.query) {
        Ok(Some(v)) if v == API_VERSION => {}
        Ok(Some(v)) => {
            return bad(
                "InvalidApiVersionParameter",
                format!(
                    "The api-version '{v}' is invalid. The supported versions are '{API_VERSION}'."
                ),
            );
        }
        Ok(None) => {
            return bad(
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            );
        }
        Err(()) => return bad("InvalidRequestContent", "The query string is malformed."),
    }
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let mut w = cx.sim.lock();
    w.arc_progress();
    match s.as_slice() {
        // Operation statuses and results, at subscription or tenant level.
        [sub_kw, _, prov, ns, loc_kw, _, kind, id]
            if is(sub_kw, "subscriptions")
                && is(prov, "providers")
                && is(ns, PROVIDER)
                && is(loc_kw, "locations") =>
        {
            operation(cx, &w, req, kind, id)
        }
        [prov, ns, loc_kw, _, kind, id]
            if is(prov, "providers") && is(ns, PROVIDER) && is(loc_kw, "locations") =>
        {
            operation(cx, &w, req, kind, id)
        }
        [sub_kw, sub, rg_kw, rg, prov, ns, ty, name, rest @ ..]
            if is(sub_kw, "subscriptions")
                && is(rg_kw, "resourceGroups")
                && is(prov, "providers")
                && is(ns, PROVIDER)
                && is(ty, "sqlServerInstances") =>
        {
            let Some(id) = w.arc_instance_id() else {
                return not_found(name);
            };
            if !(is(sub, id.subscription_id())
                && is(rg, id.resource_group())
                && is(name, id.name()))
            {
                return not_found(&format!("{PROVIDER}/sqlServerInstances/{name}"));
            }
            instance_route(cx, &mut w, req, &id, rest)
        }
        _ => not_found(req.path),
    }
}

fn method_not_allowed(method: &str) -> Reply {
    Reply::error(
        405,
        "MethodNotAllowed",
        format!("The requested resource does not support http method '{method}'."),
    )
}

fn instance_route(
    cx: &Context<'_>,
    w: &mut World,
    req: &Request<'_>,
    id: &ArcInstanceId,
    rest: &[&str],
) -> Reply {
    let get = req.method == "GET";
    let post = req.method == "POST";
    match rest {
        [] if get => Reply::json(200, w.arc_instance(id)),
        [db] if get && is(db, "databases") => Reply::json(200, w.arc_databases(id)),
        [ags] if get && is(ags, "availabilityGroups") => {
            Reply::json(200, w.arc_availability_groups(id))
        }
        [ags, name] if get && is(ags, "availabilityGroups") => {
            match w.arc_availability_group(id, name) {
                Some(ag) => Reply::json(200, ag),
                None => not_found(&format!(
                    "{PROVIDER}/sqlServerInstances/availabilityGroups/{name}"
                )),
            }
        }
        [action] if post => {
            let operation_id = match action.to_ascii_lowercase().as_str() {
                "createmanagedinstancelink" => {
                    "SqlServerAvailabilityGroups_CreateManagedInstanceLink"
                }
                "runmanagedinstancelinkassessment" => {
                    "SqlServerInstances_RunManagedInstanceLinkAssessment"
                }
                "gettelemetry" => "SqlServerInstances_GetTelemetry",
                "runmigrationassessment" => "SqlServerInstances_RunMigrationAssessment",
                _ => return not_found(req.path),
            };
            action_route(cx, w, req, id, operation_id, None)
        }
        [ags, name, action] if post && is(ags, "availabilityGroups") => {
            let operation_id = match action.to_ascii_lowercase().as_str() {
                "failovermilink" => "SqlServerAvailabilityGroups_failoverMiLink",
                "deletemilink" => "SqlServerAvailabilityGroups_deleteMiLink",
                _ => return not_found(req.path),
            };
            action_route(cx, w, req, id, operation_id, Some(name))
        }
        [] | [_] | [_, _] | [_, _, _] => method_not_allowed(req.method),
        _ => not_found(req.path),
    }
}

/// The definition in `sqlServerInstances.json` of an instance action's body.
fn instance_definition(operation_id: &str) -> Option<&'static str> {
    match operation_id {
        "SqlServerInstances_RunManagedInstanceLinkAssessment" => {
            Some("SqlServerInstanceManagedInstanceLinkAssessmentRequest")
        }
        "SqlServerInstances_GetTelemetry" => Some("SqlServerInstanceTelemetryRequest"),
        _ => None,
    }
}

fn action_route(
    cx: &Context<'_>,
    w: &mut World,
    req: &Request<'_>,
    id: &ArcInstanceId,
    operation_id: &'static str,
    ag: Option<&str>,
) -> Reply {
    if w.arc.denied.iter().any(|d| d == operation_id) {
        let action = crate::arm::errors::permission(crate::arm::Method::Post, req.path);
        return Reply::error(
            403,
            "AuthorizationFailed",
            format!(
                "The client does not have authorization to perform action '{action}' over scope \
                 '{id}' or the scope is invalid."
            ),
        );
    }
    let body: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(req.body) {
            Ok(v) => v,
            Err(e) => {
                return bad(
                    "InvalidRequestContent",
                    format!("The body is not JSON: {e}"),
                );
            }
        }
    };
    let checked = match instance_definition(operation_id) {
        Some(definition) => crate::arm::spec::validate_definition(
            API_VERSION,
            "sqlServerInstances.json",
            definition,
            &body,
        )
        .map_err(|v| {
            let named: Vec<String> = v.iter().map(ToString::to_string).collect();
            format!("the body does not fit the spec: {}", named.join("; "))
        }),
        // deleteMiLink takes no body: none is what the spec asks for.
        None if body.is_null() && operation_id == "SqlServerAvailabilityGroups_deleteMiLink" => {
            Ok(())
        }
        None if operation_id.starts_with("SqlServerAvailabilityGroups_") => {
            cx.body_check.check(&BodyToCheck {
                operation_id,
                api_version: API_VERSION,
                body: &body,
            })
        }
        None => Ok(()),
    };
    if let Err(message) = checked {
        return bad("InvalidRequestContent", message);
    }
    if !w.arc.agent_connected {
        return Reply::error(
            409,
            "ArcAgentDisconnected",
            format!(
                "The Azure Arc agent of '{}' is Disconnected: the Azure Extension for SQL Server \
                 cannot be reached.",
                id.name()
            ),
        );
    }
    let (work, tenant) = match operation_id {
        "SqlServerInstances_RunMigrationAssessment" => {
            *w.arc.starts.entry(operation_id.to_owned()).or_insert(0) += 1;
            w.arc.migration_assessment_started = Some(w.now);
            let job = w.guid();
            return Reply::json(200, w.arc_migration_job(id, &job));
        }
        "SqlServerInstances_RunManagedInstanceLinkAssessment" => {
            (ArcWork::MiLinkAssessment { request: body }, true)
        }
        "SqlServerInstances_GetTelemetry" => (ArcWork::Telemetry { request: body }, true),
        "SqlServerAvailabilityGroups_CreateManagedInstanceLink" => match link_plan(w, &body) {
            Ok(plan) => (ArcWork::CreateLink(plan), false),
            Err(reply) => return reply,
        },
        "SqlServerAvailabilityGroups_failoverMiLink" => {
            let Some(link) = ag.and_then(|a| LinkName::new(a).ok()) else {
                return not_found(req.path);
            };
            if let Err(reply) = check_failover(w, &link, &body) {
                return reply;
            }
            let force = body["force"].as_bool().unwrap_or(false);
            (ArcWork::Failover { link, force }, false)
        }
        _ => {
            let Some(link) = ag.and_then(|a| LinkName::new(a).ok()) else {
                return not_found(req.path);
            };
            if !w.source.dags.contains_key(&link) && !w.instance.links.contains_key(&link) {
                return not_found(&format!(
                    "{PROVIDER}/sqlServerInstances/availabilityGroups/{link}"
                ));
            }
            (ArcWork::Delete { link }, false)
        }
    };
    // One link operation at a time per link: a second one while the first runs (a request sent
    // again after its answer was lost) is refused before it acts (UNVERIFIED: the service's
    // answer is not documented; this is the simulator's).
    if let Some(link) = work.link()
        && let Some(running) = w.arc.running_on(link)
    {
        return Reply::error(
            409,
            OPERATION_IN_PROGRESS,
            format!(
                "The operation {running} on the availability group '{link}' is still in \
                 progress; wait until it ends."
            ),
        );
    }
    let op = w.arc_start(operation_id, work);
    accepted(cx, w, id, &op, tenant)
}

fn accepted(cx: &Context<'_>, w: &World, id: &ArcInstanceId, op: &str, tenant: bool) -> Reply {
    let location = &w.config.location;
    let (status, result) = if tenant {
        let url = format!(
            "{}/providers/{PROVIDER}/locations/{location}/operationStatuses/{op}?api-version={API_VERSION}",
            cx.base_url
        );
        (url.clone(), url)
    } else {
        let base = format!(
            "{}/subscriptions/{}/providers/{PROVIDER}/locations/{location}",
            cx.base_url,
            id.subscription_id()
        );
        (
            format!("{base}/operationsStatuses/{op}?api-version={API_VERSION}"),
            format!("{base}/operationResults/{op}?api-version={API_VERSION}"),
        )
    };
    Reply::empty(202)
        .with_header("Azure-AsyncOperation", status)
        .with_header("Location", result)
        .with_header("Retry-After", w.arc.step.as_secs().max(1).to_string())
}

/// SQL Server's side of the link from `createManagedInstanceLink`'s body (already checked
/// against the spec).
fn link_plan(w: &World, body: &Value) -> Result<ArcLinkPlan, Reply> {
    let ag = &body["availabilityGroup"];
    let dag = &body["distributedAvailabilityGroup"];
    let replica = &ag["replicas"][0];
    let primary = &dag["primaryAvailabilityGroup"];
    let secondary = dag["secondaryAvailabilityGroup"]["availabilityGroup"]
        .as_str()
        .unwrap_or_default();
    if !secondary.eq_ignore_ascii_case(&w.instance.id.to_string()) {
        return Err(bad(
            "InvalidParameterValue",
            format!(
                "The secondary availability group '{secondary}' is not the managed instance \
                 '{}'.",
                w.instance.id
            ),
        ));
    }
    fn name_err(what: &'static str) -> impl Fn(crate::names::NameError) -> Reply {
        move |e| bad("InvalidParameterValue", format!("{what}: {e}"))
    }
    let ag_name = AgName::new(ag["availabilityGroupName"].as_str().unwrap_or_default())
        .map_err(name_err("availabilityGroupName"))?;
    let link = LinkName::new(dag["availabilityGroupName"].as_str().unwrap_or_default()).map_err(
        name_err("distributedAvailabilityGroup.availabilityGroupName"),
    )?;
    let mut databases = Vec::new();
    for db in ag["databases"].as_array().into_iter().flatten() {
        let name =
            DatabaseName::new(db.as_str().unwrap_or_default()).map_err(name_err("databases"))?;
        if !w.source.databases.contains_key(&name) {
            return Err(bad(
                "InvalidParameterValue",
                format!("The database '{name}' does not exist on the SQL Server instance."),
            ));
        }
        databases.push(name);
    }
    if databases.is_empty() {
        return Err(bad("InvalidParameterValue", "No database to link."));
    }
    if !w.arc_extension_allows(databases.len()) {
        return Err(bad(
            "ExtensionVersionNotSupported",
            extension_too_old_message(&w.arc.extension_version, databases.len()),
        ));
    }
    if w.source.dags.contains_key(&link) || w.instance.links.contains_key(&link) {
        return Err(Reply::error(
            409,
            "AvailabilityGroupAlreadyExists",
            format!("The distributed availability group '{link}' already exists."),
        ));
    }
    let endpoint_url = replica["endpointUrl"]
        .as_str()
        .or(primary["listenerUrl"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("TCP://{}:5022", w.source.server));
    let port = endpoint_url
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok())
        .and_then(|p| TcpPort::new(p).ok())
        .ok_or_else(|| {
            bad(
                "InvalidParameterValue",
                format!("'{endpoint_url}' names no port."),
            )
        })?;
    let certificate = replica["certificateName"]
        .as_str()
        .or(primary["certificateConfiguration"]["certificateName"].as_str())
        .unwrap_or("MiLinkEndpointCertificate");
    let mi_ag = body["miLinkConfiguration"]["instanceAvailabilityGroupName"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{ag_name}_MI"));
    let server = replica["serverInstance"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| w.source.server.to_string());
    Ok(ArcLinkPlan {
        ag: ag_name,
        databases,
        replica: server
            .parse()
            .map_err(|e| bad("InvalidParameterValue", format!("serverInstance: {e}")))?,
        endpoint_name: EndpointName::new(
            replica["endpointName"].as_str().unwrap_or("Hadr_endpoint"),
        )
        .map_err(name_err("endpointName"))?,
        endpoint_url,
        port,
        certificate: CertificateName::new(certificate).map_err(name_err("certificateName"))?,
        dag: link,
        mi_ag: AgName::new(&mi_ag).map_err(name_err("instanceAvailabilityGroupName"))?,
    })
}

fn check_failover(w: &World, link: &LinkName, body: &Value) -> Result<(), Reply> {
    let mi = body["managedInstanceId"].as_str().unwrap_or_default();
    if !mi.eq_ignore_ascii_case(&w.instance.id.to_string()) {
        return Err(bad(
            "InvalidParameterValue",
            format!(
                "'{mi}' is not the managed instance of the link '{link}' ('{}').",
                w.instance.id
            ),
        ));
    }
    if !w.source.dags.contains_key(link) {
        return Err(not_found(&format!(
            "{PROVIDER}/sqlServerInstances/availabilityGroups/{link}"
        )));
    }
    if !w.arc_sql_is_primary(link) {
        return Err(Reply::error(
            409,
            "FailoverNotAllowed",
            format!(
                "SQL Server is not the primary replica of '{link}': the link has already failed \
                 over to the managed instance."
            ),
        ));
    }
    Ok(())
}

fn status_body(o: &ArcSimOperation, path: &str) -> Value {
    let status = match &o.outcome {
        None if o.steps_done == 0 => "Accepted",
        None => "InProgress",
        Some(Ok(_)) => "Succeeded",
        Some(Err(_)) => "Failed",
    };
    let mut body = json!({
        "id": path,
        "name": o.id,
        "status": status,
        "startTime": crate::arc::date_time(o.started),
    });
    if let Some(map) = body.as_object_mut() {
        if let Some(ended) = o.ended {
            map.insert("endTime".to_owned(), json!(crate::arc::date_time(ended)));
        }
        match &o.outcome {
            Some(Ok(result)) if !result.is_null() => {
                map.insert("properties".to_owned(), result.clone());
            }
            Some(Err((code, message))) => {
                map.insert(
                    "error".to_owned(),
                    json!({"code": code, "message": message}),
                );
            }
            _ => {}
        }
    }
    body
}

fn operation(cx: &Context<'_>, w: &World, req: &Request<'_>, kind: &str, id: &str) -> Reply {
    if req.method != "GET" {
        return method_not_allowed(req.method);
    }
    let Some(o) = w.arc.operations.get(id) else {
        return not_found(&format!("operation {id}"));
    };
    let retry = w.arc.step.as_secs().max(1).to_string();
    let lower = kind.to_ascii_lowercase();
    if lower == "operationsstatuses" || lower == "operationstatuses" {
        let reply = Reply::json(200, status_body(o, req.path));
        return if o.outcome.is_none() {
            reply.with_header("Retry-After", retry)
        } else {
            reply
        };
    }
    if lower != "operationresults" {
        return not_found(req.path);
    }
    match &o.outcome {
        None => Reply::empty(202)
            .with_header(
                "Location",
                format!("{}{}?api-version={API_VERSION}", cx.base_url, req.path),
            )
            .with_header("Retry-After", retry),
        Some(Ok(result)) if result.is_null() => Reply::empty(204),
        Some(Ok(result)) => Reply::json(200, result.clone()),
        Some(Err((code, message))) => Reply::error(400, code, message.clone()),
    }
}
