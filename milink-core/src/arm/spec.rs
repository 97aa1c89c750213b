//! Requests checked against the official Swagger files of the resources milink uses
//! (`Microsoft.Sql` `DistributedAvailabilityGroups`, `ServerTrustCertificates`,
//! `EndpointCertificates`, in [`API_VERSION`] and [`PREVIEW_API_VERSION`]; copied verbatim in
//! `testdata/` and embedded here, the examples excepted), and, for the Arc route,
//! `Microsoft.AzureArcData` `sqlServerAvailabilityGroups.json` and `sqlServerInstances.json` in
//! [`crate::arc::API_VERSION`] (copied in `arc/testdata/`). The files of one api-version are
//! loaded together: a `$ref` to a sibling file (`./sqlServerInstances.json#/definitions/…`) is
//! resolved in that file, and its own local `$ref`s there. `sqlServerInstances.json` holds
//! definitions only (`"paths": {}`): a body of one of its operations is checked against its
//! definition with [`validate_definition`].
//!
//! A small validator for the subset of Swagger 2.0 these specs use. A JSON-schema crate would
//! bring an HTTP client and does not know Swagger's `readOnly`, nor that the specs' objects are
//! meant closed: local `$ref`s and the two common files' types defined here (the SQL-local
//! `ProxyResource` and common-types `ErrorResponse`), `type`, `properties`, `required`, `enum`,
//! `items`, `allOf`, `additionalProperties`, `readOnly` (a read-only property in a request is a
//! violation), and the path parameters' `minLength`/`maxLength`/`pattern` (the two patterns the
//! specs use). A property no schema declares is refused. `x-ms-*` is ignored.
//!
//! Compiled with the simulator (`sim`, whose HTTPS server refuses what ARM would refuse) and in
//! tests only: the specs weigh some 700 KB of text, which a build that drives a real link does
//! not need (ARM validates what it receives).
//!
//! Pure: no I/O. The specs are parsed once, on first use.

use std::fmt;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use super::{API_VERSION, ArmRequest, Method, PREVIEW_API_VERSION};
use crate::arc::API_VERSION as ARC_API_VERSION;

pub(crate) const DAG_STABLE: &str =
    include_str!("testdata/stable/2025-01-01/DistributedAvailabilityGroups.json");
pub(crate) const DAG_PREVIEW: &str =
    include_str!("testdata/preview/2025-08-01-preview/DistributedAvailabilityGroups.json");
pub(crate) const STC_STABLE: &str =
    include_str!("testdata/stable/2025-01-01/ServerTrustCertificates.json");
pub(crate) const STC_PREVIEW: &str =
    include_str!("testdata/preview/2025-08-01-preview/ServerTrustCertificates.json");
pub(crate) const EC_STABLE: &str =
    include_str!("testdata/stable/2025-01-01/EndpointCertificates.json");
pub(crate) const EC_PREVIEW: &str =
    include_str!("testdata/preview/2025-08-01-preview/EndpointCertificates.json");
pub(crate) const ARC_AG: &str =
    include_str!("../arc/testdata/stable/2026-01-01/sqlServerAvailabilityGroups.json");
pub(crate) const ARC_INSTANCES: &str =
    include_str!("../arc/testdata/stable/2026-01-01/sqlServerInstances.json");
/// The file names the Arc specs refer to each other by.
const ARC_AG_FILE: &str = "sqlServerAvailabilityGroups.json";
const ARC_INSTANCES_FILE: &str = "sqlServerInstances.json";

/// One way a request departs from its spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where: a JSON path into the body (`$.properties.failoverMode`), `path {name}` for a path
    /// parameter, or empty for the request as a whole.
    pub at: String,
    /// What is wrong, e.g. `unknown property`, `read-only property in a request`.
    pub problem: String,
}

impl Violation {
    fn new(at: impl Into<String>, problem: impl Into<String>) -> Violation {
        Violation {
            at: at.into(),
            problem: problem.into(),
        }
    }

    fn whole(problem: impl Into<String>) -> Violation {
        Violation::new(String::new(), problem)
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at.is_empty() {
            f.write_str(&self.problem)
        } else {
            write!(f, "{}: {}", self.at, self.problem)
        }
    }
}

/// Validates `request` (path template and parameters, api-version, body) against its operation
/// in the spec of its api-version.
pub fn validate_request(request: &ArmRequest) -> Result<(), Vec<Violation>> {
    validate(
        request.method,
        &request.path,
        request.api_version,
        request.body.as_ref(),
    )
}

/// Validates a request given by method, path (under the management endpoint, percent-encoded),
/// api-version and body against the operation the path and method select.
pub fn validate(
    method: Method,
    path: &str,
    api_version: &str,
    body: Option<&Value>,
) -> Result<(), Vec<Violation>> {
    let Some(specs) = specs_of(api_version) else {
        return Err(vec![no_spec(api_version)]);
    };
    let mut first = None;
    for spec in specs {
        let violations = spec.check(method, path, api_version, body);
        // The spec that has the operation decides.
        if !violations.iter().any(|v| v.problem.starts_with("no ")) {
            return into_result(violations);
        }
        first.get_or_insert(violations);
    }
    into_result(first.unwrap_or_default())
}

/// Validates the body of the operation `operation_id` (e.g.
/// `DistributedAvailabilityGroups_CreateOrUpdate`) in `api_version`: the body alone, against the
/// operation's body parameter (`None`: no body was sent).
pub fn validate_operation(
    operation_id: &str,
    api_version: &str,
    body: Option<&Value>,
) -> Result<(), Vec<Violation>> {
    let Some(specs) = specs_of(api_version) else {
        return Err(vec![no_spec(api_version)]);
    };
    for spec in specs {
        if let Some((method, op)) = spec.operation(operation_id) {
            let mut violations = Vec::new();
            let schema = spec.body_schema(op);
            spec.check_body(method, schema, body, &mut violations);
            return into_result(violations);
        }
    }
    Err(vec![Violation::whole(format!(
        "no operation {operation_id} in api-version {api_version}"
    ))])
}

/// Validates `body` against the definition `definition` of the spec file `file` (e.g.
/// `sqlServerInstances.json`, `SqlServerInstanceTelemetryRequest`) of `api_version`, as a request
/// body: for an operation whose path is in a file that is not copied.
pub fn validate_definition(
    api_version: &str,
    file: &str,
    definition: &str,
    body: &Value,
) -> Result<(), Vec<Violation>> {
    let Some(specs) = specs_of(api_version) else {
        return Err(vec![no_spec(api_version)]);
    };
    let Some(spec) = specs.iter().find(|s| s.file == file) else {
        return Err(vec![Violation::whole(format!(
            "no spec file {file} in api-version {api_version}"
        ))]);
    };
    let mut violations = Vec::new();
    let schema = json!({"$ref": format!("#/definitions/{definition}")});
    spec.validate(&schema, body, "$", &mut violations);
    into_result(violations)
}

fn into_result(violations: Vec<Violation>) -> Result<(), Vec<Violation>> {
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

fn no_spec(api_version: &str) -> Violation {
    Violation::whole(format!(
        "api-version {api_version} has no spec here ({API_VERSION}, {PREVIEW_API_VERSION}, {})",
        ARC_API_VERSION
    ))
}

/// The parsed specs, per api-version: `Microsoft.Sql` stable, then preview, then Arc.
fn all_specs() -> &'static [Vec<Spec>; 3] {
    static SPECS: OnceLock<[Vec<Spec>; 3]> = OnceLock::new();
    SPECS.get_or_init(|| {
        let parse = |texts: &[(&str, &'static str)]| {
            texts
                .iter()
                .filter_map(|(text, file)| Spec::parse_file(text, file))
                .collect()
        };
        [
            parse(&[
                (DAG_STABLE, "DistributedAvailabilityGroups.json"),
                (STC_STABLE, "ServerTrustCertificates.json"),
                (EC_STABLE, "EndpointCertificates.json"),
            ]),
            parse(&[
                (DAG_PREVIEW, "DistributedAvailabilityGroups.json"),
                (STC_PREVIEW, "ServerTrustCertificates.json"),
                (EC_PREVIEW, "EndpointCertificates.json"),
            ]),
            parse(&[(ARC_AG, ARC_AG_FILE), (ARC_INSTANCES, ARC_INSTANCES_FILE)]),
        ]
    })
}

fn specs_of(api_version: &str) -> Option<&'static [Spec]> {
    let [stable, preview, arc] = all_specs();
    match api_version {
        API_VERSION => Some(stable),
        PREVIEW_API_VERSION => Some(preview),
        ARC_API_VERSION => Some(arc),
        _ => None,
    }
}

/// The definitions of the files the specs refer to but that are not copied: the SQL-local
/// `common/v1/types.json` (`ProxyResource` via `Resource`) and common-types v5 `ErrorResponse`.
fn common_definition(reference: &str) -> Option<Value> {
    if reference.ends_with("#/definitions/ProxyResource") {
        Some(json!({"type": "object", "properties": {
            "id": {"type": "string", "readOnly": true},
            "name": {"type": "string", "readOnly": true},
            "type": {"type": "string", "readOnly": true},
        }}))
    } else if reference.ends_with("#/definitions/ErrorResponse") {
        Some(
            json!({"type": "object", "properties": {"error": {"type": "object", "readOnly": true}}}),
        )
    } else {
        None
    }
}

/// One Swagger file.
pub(crate) struct Spec {
    pub(crate) doc: Value,
    /// Its file name, by which its siblings of the same api-version refer to it.
    file: &'static str,
}

impl Spec {
    /// `None` when `text` is not JSON (the embedded files are: a test parses each).
    #[cfg(test)]
    pub(crate) fn parse(text: &str) -> Option<Spec> {
        Spec::parse_file(text, "")
    }

    /// [`Spec::parse`] of the file named `file`.
    fn parse_file(text: &str, file: &'static str) -> Option<Spec> {
        serde_json::from_str(text)
            .ok()
            .map(|doc| Spec { doc, file })
    }

    fn version(&self) -> &str {
        self.doc["info"]["version"].as_str().unwrap_or_default()
    }

    /// The schema `reference` names and the spec its own local `$ref`s resolve in: this one
    /// for `#/definitions/…`, a sibling file of the same api-version for
    /// `./<file>#/definitions/…`, else the common files' types defined here.
    fn resolve<'s>(&'s self, reference: &str) -> Result<(&'s Spec, Value), Violation> {
        let definition = |spec: &'s Spec, name: &str| {
            Some(&spec.doc["definitions"][name])
                .filter(|d| !d.is_null())
                .map(|d| (spec, d.clone()))
        };
        let found = match reference.split_once("#/definitions/") {
            Some(("", name)) => definition(self, name),
            Some((path, name)) => {
                let file = path.rsplit('/').next().unwrap_or(path);
                let sibling = specs_of(self.version())
                    .and_then(|specs| specs.iter().find(|s| !s.file.is_empty() && s.file == file));
                match sibling {
                    Some(sibling) => definition(sibling, name),
                    None => common_definition(reference).map(|d| (self, d)),
                }
            }
            None => None,
        };
        found.ok_or_else(|| Violation::whole(format!("spec: unresolved $ref {reference}")))
    }

    /// The operation `operation_id` and its method.
    fn operation(&self, operation_id: &str) -> Option<(Method, &Value)> {
        self.doc["paths"].as_object()?.values().find_map(|ops| {
            ops.as_object()?.iter().find_map(|(method, op)| {
                (op["operationId"].as_str() == Some(operation_id))
                    .then(|| method_of(method).map(|m| (m, op)))
                    .flatten()
            })
        })
    }

    /// The operation's parameters, `$ref`s to this file resolved; the common file's
    /// (subscriptionId, resourceGroupName, api-version: plain strings) left out.
    fn parameters(&self, op: &Value) -> Vec<Value> {
        let Some(parameters) = op["parameters"].as_array() else {
            return Vec::new();
        };
        parameters
            .iter()
            .filter_map(|p| match p["$ref"].as_str() {
                Some(r) => r
                    .strip_prefix("#/parameters/")
                    .map(|name| self.doc["parameters"][name].clone()),
                None => Some(p.clone()),
            })
            .collect()
    }

    /// The body parameter's schema and whether it is required.
    fn body_schema(&self, op: &Value) -> Option<(Value, bool)> {
        self.parameters(op)
            .into_iter()
            .find(|p| p["in"] == json!("body"))
            .map(|p| (p["schema"].clone(), p["required"] == json!(true)))
    }

    fn check_body(
        &self,
        method: Method,
        schema: Option<(Value, bool)>,
        body: Option<&Value>,
        violations: &mut Vec<Violation>,
    ) {
        let method = method.as_str().to_ascii_lowercase();
        match (schema, body) {
            (None, Some(_)) => violations.push(Violation::whole(format!("{method} takes no body"))),
            (Some((_, true)), None) => {
                violations.push(Violation::whole(format!("{method} needs a body")))
            }
            (Some((schema, _)), Some(body)) => self.validate(&schema, body, "$", violations),
            _ => {}
        }
    }

    /// The violations of a request against this spec (empty when it is valid).
    pub(crate) fn check(
        &self,
        method: Method,
        path: &str,
        api_version: &str,
        body: Option<&Value>,
    ) -> Vec<Violation> {
        let mut violations = Vec::new();
        if api_version != self.version() {
            violations.push(Violation::whole(format!(
                "api-version {api_version} is not the spec's {}",
                self.version()
            )));
        }
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        let found = self.doc["paths"].as_object().and_then(|paths| {
            paths.iter().find_map(|(template, ops)| {
                let parts: Vec<&str> = template.split('/').skip(1).collect();
                let matches = parts.len() == segments.len()
                    && parts
                        .iter()
                        .zip(&segments)
                        .all(|(p, s)| p.starts_with('{') || p.eq_ignore_ascii_case(s));
                matches.then_some((parts, ops))
            })
        });
        let Some((template, ops)) = found else {
            return vec![Violation::whole(format!("no operation at {path}"))];
        };
        let name = method.as_str().to_ascii_lowercase();
        let Some(op) = ops.get(&name) else {
            return vec![Violation::whole(format!("no {name} at {path}"))];
        };
        for parameter in self.parameters(op) {
            if parameter["in"] != json!("path") {
                continue;
            }
            let name = parameter["name"].as_str().unwrap_or_default();
            let at = template.iter().position(|p| *p == format!("{{{name}}}"));
            match at.and_then(|at| segments.get(at)) {
                Some(segment) => match decode(segment) {
                    Some(value) => check_path_parameter(&parameter, &value, &mut violations),
                    None => violations.push(Violation::new(
                        format!("path {name}"),
                        "not percent-encoded UTF-8",
                    )),
                },
                None => violations.push(Violation::new(
                    format!("path {name}"),
                    "not in the template",
                )),
            }
        }
        let schema = self.body_schema(op);
        self.check_body(method, schema, body, &mut violations);
        violations
    }

    fn validate(&self, schema: &Value, value: &Value, at: &str, violations: &mut Vec<Violation>) {
        if schema["readOnly"] == json!(true) {
            violations.push(Violation::new(at, "read-only property in a request"));
            return;
        }
        if let Some(reference) = schema["$ref"].as_str() {
            match self.resolve(reference) {
                Ok((spec, schema)) => spec.validate(&schema, value, at, violations),
                Err(v) => violations.push(v),
            }
            return;
        }
        if let Some(kind) = schema["type"].as_str() {
            let ok = match kind {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                other => {
                    violations.push(Violation::new(
                        at,
                        format!("spec: type {other} not handled"),
                    ));
                    return;
                }
            };
            if !ok {
                violations.push(Violation::new(at, format!("{value} is not of type {kind}")));
                return;
            }
        }
        if let Some(values) = schema["enum"].as_array()
            && !values.contains(value)
        {
            violations.push(Violation::new(
                at,
                format!("{value} is not one of {values:?}"),
            ));
        }
        if let Some(items) = schema.get("items")
            && let Some(array) = value.as_array()
        {
            for (i, item) in array.iter().enumerate() {
                self.validate(items, item, &format!("{at}[{i}]"), violations);
            }
        }
        if let Some(object) = value.as_object() {
            self.validate_object(schema, object, at, violations);
        }
    }

    /// Properties, required and additionalProperties, merged over `allOf` (objects are closed).
    fn validate_object(
        &self,
        schema: &Value,
        object: &Map<String, Value>,
        at: &str,
        violations: &mut Vec<Violation>,
    ) {
        // Each property with the spec its `$ref`s resolve in (an `allOf` part may come from a
        // sibling file).
        let mut properties: Map<String, Value> = Map::new();
        let mut owners: Vec<(String, &Spec)> = Vec::new();
        let mut required = Vec::new();
        let mut additional: Option<(&Spec, Value)> = None;
        let mut parts = vec![(self, schema.clone())];
        while let Some((spec, part)) = parts.pop() {
            let (spec, part) = match part["$ref"].as_str() {
                Some(reference) => match spec.resolve(reference) {
                    Ok(found) => found,
                    Err(v) => {
                        violations.push(v);
                        continue;
                    }
                },
                None => (spec, part),
            };
            if let Some(p) = part["properties"].as_object() {
                properties.extend(p.clone());
                owners.extend(p.keys().map(|k| (k.clone(), spec)));
            }
            if let Some(r) = part["required"].as_array() {
                required.extend(r.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            if let Some(a) = part.get("additionalProperties") {
                additional = Some((spec, a.clone()));
            }
            if let Some(all) = part["allOf"].as_array() {
                parts.extend(all.iter().map(|p| (spec, p.clone())));
            }
        }
        let owner = |name: &str| {
            owners
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map_or(self, |(_, spec)| *spec)
        };
        for name in &required {
            if !object.contains_key(name) {
                violations.push(Violation::new(
                    at,
                    format!("required property {name} is missing"),
                ));
            }
        }
        for (name, value) in object {
            let here = format!("{at}.{name}");
            match (properties.get(name), &additional) {
                (Some(schema), _) => owner(name).validate(schema, value, &here, violations),
                (None, Some((spec, schema))) if schema.is_object() => {
                    spec.validate(schema, value, &here, violations)
                }
                _ => violations.push(Violation::new(here, "unknown property")),
            }
        }
    }
}

fn method_of(name: &str) -> Option<Method> {
    Some(match name {
        "get" => Method::Get,
        "put" => Method::Put,
        "patch" => Method::Patch,
        "post" => Method::Post,
        "delete" => Method::Delete,
        _ => return None,
    })
}

fn decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = segment.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `minLength`, `maxLength` and the two `pattern`s the specs give path parameters (failover's).
pub(crate) fn check_path_parameter(
    parameter: &Value,
    value: &str,
    violations: &mut Vec<Violation>,
) {
    let at = format!("path {}", parameter["name"].as_str().unwrap_or_default());
    let len = value.chars().count() as u64;
    if parameter["minLength"].as_u64().is_some_and(|min| len < min)
        || parameter["maxLength"].as_u64().is_some_and(|max| len > max)
    {
        violations.push(Violation::new(&at, format!("length {len} out of bounds")));
    }
    let Some(pattern) = parameter["pattern"].as_str() else {
        return;
    };
    let ok = match pattern {
        // Lowercase letters and digits in groups joined by single hyphens.
        "^[a-z0-9]+(?:-[a-z0-9]+)*$" => value.split('-').all(|g| {
            !g.is_empty()
                && g.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        }),
        // A letter, `#` or `_`, then word characters, `@`, `#` or `$`.
        r"^[#a-zA-Z_][\w@#$]*$" => {
            let mut chars = value.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '#' || c == '_')
                && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '@' | '#' | '$'))
        }
        other => {
            violations.push(Violation::new(
                at,
                format!("spec: pattern {other} not handled"),
            ));
            return;
        }
    };
    if !ok {
        violations.push(Violation::new(
            at,
            format!("{value:?} does not match {pattern}"),
        ));
    }
}

/// The spec for `request`'s resource in `version` (tests pick the version apart from the
/// request's, to check a request against the other).
#[cfg(test)]
pub(crate) fn spec_for(request: &ArmRequest, version: &str) -> &'static Spec {
    let [stable, preview, arc] = all_specs();
    let specs = if version == API_VERSION {
        stable
    } else if version == ARC_API_VERSION {
        arc
    } else {
        preview
    };
    let at =
        if version == ARC_API_VERSION || request.path.contains("/distributedAvailabilityGroups/") {
            0
        } else if request.path.contains("/serverTrustCertificates/") {
            1
        } else {
            2
        };
    &specs[at]
}

#[cfg(test)]
impl Spec {
    /// [`Spec::check`] of an [`ArmRequest`], as strings.
    pub(crate) fn check_request(&self, request: &ArmRequest) -> Vec<String> {
        self.check(
            request.method,
            &request.path,
            request.api_version,
            request.body.as_ref(),
        )
        .iter()
        .map(ToString::to_string)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAG: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/mi/distributedAvailabilityGroups/DAG_x";

    #[test]
    fn the_public_entry_points_pick_the_operation_and_name_the_violations() {
        let body = json!({"failoverType": "Planned"});
        let failover = format!("{DAG}/failover");
        assert_eq!(
            validate(Method::Post, &failover, API_VERSION, Some(&body)),
            Ok(())
        );
        assert_eq!(
            validate_operation(
                "DistributedAvailabilityGroups_Failover",
                PREVIEW_API_VERSION,
                Some(&body)
            ),
            Ok(())
        );
        let bad = json!({"failoverType": "Forced", "force": true});
        let Err(violations) = validate_operation(
            "DistributedAvailabilityGroups_Failover",
            API_VERSION,
            Some(&bad),
        ) else {
            panic!("a bad body passed");
        };
        let named: Vec<String> = violations.iter().map(ToString::to_string).collect();
        assert_eq!(named.len(), 2, "{named:?}");
        assert!(named.contains(&"$.force: unknown property".to_owned()));
        assert!(named[0].starts_with("$.failoverType: \"Forced\" is not one of"));
        // The certificate's path is in another spec file than the link's.
        let cert = DAG.replace(
            "distributedAvailabilityGroups/DAG_x",
            "serverTrustCertificates/c",
        );
        let cert_body = json!({"properties": {"publicBlob": "0x30"}});
        assert_eq!(
            validate(Method::Put, &cert, API_VERSION, Some(&cert_body)),
            Ok(())
        );
        assert_eq!(
            validate(Method::Put, &cert, "2021-11-01", Some(&cert_body)).map_err(|v| v.len()),
            Err(1)
        );
        assert!(validate(Method::Post, &cert, API_VERSION, None).is_err());
        assert!(validate_operation("Databases_Get", API_VERSION, None).is_err());
        assert_eq!(
            validate_operation("DistributedAvailabilityGroups_Delete", API_VERSION, None),
            Ok(())
        );
    }

    #[test]
    fn a_ref_to_a_sibling_file_resolves_there_with_its_own_local_refs() {
        let [_, _, arc] = all_specs();
        let ag = arc.iter().find(|s| s.file == ARC_AG_FILE).unwrap();
        assert!(ag.doc["definitions"]["MiLinkAssessmentCategory"].is_null());
        let schema = json!({"$ref": "./sqlServerInstances.json#/definitions/SqlServerInstanceManagedInstanceLinkAssessmentRequest"});
        let body = json!({
            "azureManagedInstanceResourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/mi",
            "databaseNames": ["db"],
            "availabilityGroupName": "ag",
            "distributedAvailabilityGroupName": "dag",
            "assessmentCategories": ["Certificates"],
        });
        let mut violations = Vec::new();
        ag.validate(&schema, &body, "$", &mut violations);
        assert_eq!(violations, vec![]);
        // The category's enum is the sibling's.
        let mut bad = body.clone();
        bad["assessmentCategories"][0] = json!("Network");
        ag.validate(&schema, &bad, "$", &mut violations);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].problem.contains("is not one of"));
        // An `allOf` part from the sibling keeps resolving there.
        let mut violations = Vec::new();
        let all_of = json!({"allOf": [schema], "properties": {"extra": {"type": "string"}}});
        ag.validate(&all_of, &json!({"extra": "x", "databaseNames": ["db"], "assessmentCategories": ["SqlInstanceAg"]}), "$", &mut violations);
        let named: Vec<String> = violations.iter().map(ToString::to_string).collect();
        assert_eq!(named.len(), 3, "{named:?}");
        assert!(
            named.iter().all(|v| v.starts_with("$: required property")),
            "{named:?}"
        );
        // A file that is not loaded is unresolved, not a panic.
        let mut violations = Vec::new();
        ag.validate(
            &json!({"$ref": "./common.json#/definitions/ConnectionAuth"}),
            &json!("x"),
            "$",
            &mut violations,
        );
        assert_eq!(
            violations[0].problem,
            "spec: unresolved $ref ./common.json#/definitions/ConnectionAuth"
        );
        // The Arc files are the Arc api-version's.
        assert_eq!(arc.len(), 2);
        assert!(arc.iter().all(|s| s.version() == ARC_API_VERSION));
        assert!(
            arc.iter()
                .any(|s| s.file == ARC_INSTANCES_FILE && s.doc["paths"] == json!({}))
        );
    }
}
