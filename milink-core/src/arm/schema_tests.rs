//! Every request [`super::request`] renders validates against its operation in the official
//! Swagger files (`testdata/`): path template and path parameters, api-version, and the body
//! against the operation's body schema.
//!
//! The validator is small and written for the subset these specs use (a JSON-schema crate would
//! bring an HTTP client and does not know Swagger's `readOnly`): local `$ref`s and the two
//! common files' types defined here, `type`, `properties`, `required`, `enum`, `items`, `allOf`,
//! `additionalProperties`, `readOnly` (a read-only property in a request is an error), and the
//! path parameters' `minLength`/`maxLength`/`pattern` (the two patterns the specs use).
//! Objects are closed: a property no schema declares is refused. `x-ms-*` is ignored.

use serde_json::{Map, Value, json};

use super::*;
use crate::lifecycle::{LinkProperties, Side};
use crate::names::{AgName, CertificateName, DatabaseName, LinkName};

const DAG_STABLE: &str =
    include_str!("testdata/stable/2025-01-01/DistributedAvailabilityGroups.json");
const DAG_PREVIEW: &str =
    include_str!("testdata/preview/2025-08-01-preview/DistributedAvailabilityGroups.json");
const STC_STABLE: &str = include_str!("testdata/stable/2025-01-01/ServerTrustCertificates.json");
const STC_PREVIEW: &str =
    include_str!("testdata/preview/2025-08-01-preview/ServerTrustCertificates.json");
const EC_STABLE: &str = include_str!("testdata/stable/2025-01-01/EndpointCertificates.json");
const EC_PREVIEW: &str =
    include_str!("testdata/preview/2025-08-01-preview/EndpointCertificates.json");

/// The definitions of the files the specs refer to but that are not copied: the SQL-local
/// `common/v1/types.json` (`ProxyResource` via `Resource`) and common-types v5 `ErrorResponse`.
fn common_definition(reference: &str) -> Value {
    if reference.ends_with("#/definitions/ProxyResource") {
        json!({"type": "object", "properties": {
            "id": {"type": "string", "readOnly": true},
            "name": {"type": "string", "readOnly": true},
            "type": {"type": "string", "readOnly": true},
        }})
    } else if reference.ends_with("#/definitions/ErrorResponse") {
        json!({"type": "object", "properties": {"error": {"type": "object", "readOnly": true}}})
    } else {
        panic!("unknown external $ref {reference}")
    }
}

/// One Swagger file.
struct Spec {
    doc: Value,
}

impl Spec {
    fn parse(text: &str) -> Spec {
        Spec {
            doc: serde_json::from_str(text).unwrap(),
        }
    }

    fn version(&self) -> &str {
        self.doc["info"]["version"].as_str().unwrap()
    }

    fn resolve(&self, reference: &str) -> Value {
        match reference.strip_prefix("#/definitions/") {
            Some(name) => {
                let found = &self.doc["definitions"][name];
                assert!(!found.is_null(), "no definition {name}");
                found.clone()
            }
            None => common_definition(reference),
        }
    }

    /// The errors of `request` against this spec (empty when it is valid).
    fn check(&self, request: &ArmRequest) -> Vec<String> {
        let mut errors = Vec::new();
        if request.api_version != self.version() {
            errors.push(format!(
                "api-version {} is not the spec's {}",
                request.api_version,
                self.version()
            ));
        }
        let segments: Vec<&str> = request.path.split('/').skip(1).collect();
        let found = self.doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .find_map(|(template, ops)| {
                let parts: Vec<&str> = template.split('/').skip(1).collect();
                let matches = parts.len() == segments.len()
                    && parts
                        .iter()
                        .zip(&segments)
                        .all(|(p, s)| p.starts_with('{') || p == s);
                matches.then_some((parts, ops))
            });
        let Some((template, ops)) = found else {
            return vec![format!("no operation at {}", request.path)];
        };
        let method = request.method.as_str().to_ascii_lowercase();
        let Some(op) = ops.get(&method) else {
            return vec![format!("no {method} at {}", request.path)];
        };
        let mut body_schema = None;
        for parameter in op["parameters"].as_array().unwrap() {
            let parameter = match parameter["$ref"].as_str() {
                Some(r) if r.starts_with("#/parameters/") => {
                    self.doc["parameters"][r.trim_start_matches("#/parameters/")].clone()
                }
                // The common file's subscriptionId, resourceGroupName, api-version: plain strings.
                Some(_) => continue,
                None => parameter.clone(),
            };
            match parameter["in"].as_str() {
                Some("body") => {
                    body_schema = Some((
                        parameter["schema"].clone(),
                        parameter["required"] == json!(true),
                    ))
                }
                Some("path") => {
                    let name = parameter["name"].as_str().unwrap();
                    let at = template.iter().position(|p| *p == format!("{{{name}}}"));
                    let Some(at) = at else {
                        errors.push(format!("path parameter {name} is not in the template"));
                        continue;
                    };
                    check_path_parameter(&parameter, &decode(segments[at]), &mut errors);
                }
                _ => {}
            }
        }
        match (&body_schema, &request.body) {
            (None, Some(_)) => errors.push(format!("{method} takes no body")),
            (Some((_, true)), None) => errors.push(format!("{method} needs a body")),
            (Some((schema, _)), Some(body)) => self.validate(schema, body, "$", &mut errors),
            _ => {}
        }
        errors
    }

    fn validate(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        if schema["readOnly"] == json!(true) {
            errors.push(format!("{at}: read-only property in a request"));
            return;
        }
        if let Some(reference) = schema["$ref"].as_str() {
            return self.validate(&self.resolve(reference), value, at, errors);
        }
        if let Some(kind) = schema["type"].as_str() {
            let ok = match kind {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                other => panic!("type {other} not handled"),
            };
            if !ok {
                errors.push(format!("{at}: {value} is not of type {kind}"));
                return;
            }
        }
        if let Some(values) = schema["enum"].as_array()
            && !values.contains(value)
        {
            errors.push(format!("{at}: {value} is not one of {values:?}"));
        }
        if let Some(items) = schema.get("items")
            && let Some(array) = value.as_array()
        {
            for (i, item) in array.iter().enumerate() {
                self.validate(items, item, &format!("{at}[{i}]"), errors);
            }
        }
        if let Some(object) = value.as_object() {
            self.validate_object(schema, object, at, errors);
        }
    }

    /// Properties, required and additionalProperties, merged over `allOf` (objects are closed).
    fn validate_object(
        &self,
        schema: &Value,
        object: &Map<String, Value>,
        at: &str,
        errors: &mut Vec<String>,
    ) {
        let mut properties = Map::new();
        let mut required = Vec::new();
        let mut additional = None;
        let mut parts = vec![schema.clone()];
        while let Some(part) = parts.pop() {
            let part = match part["$ref"].as_str() {
                Some(reference) => self.resolve(reference),
                None => part,
            };
            if let Some(p) = part["properties"].as_object() {
                properties.extend(p.clone());
            }
            if let Some(r) = part["required"].as_array() {
                required.extend(r.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            if let Some(a) = part.get("additionalProperties") {
                additional = Some(a.clone());
            }
            if let Some(all) = part["allOf"].as_array() {
                parts.extend(all.iter().cloned());
            }
        }
        for name in &required {
            if !object.contains_key(name) {
                errors.push(format!("{at}: required property {name} is missing"));
            }
        }
        for (name, value) in object {
            let here = format!("{at}.{name}");
            match (properties.get(name), &additional) {
                (Some(schema), _) => self.validate(schema, value, &here, errors),
                (None, Some(schema)) if schema.is_object() => {
                    self.validate(schema, value, &here, errors)
                }
                _ => errors.push(format!("{here}: unknown property")),
            }
        }
    }
}

fn decode(segment: &str) -> String {
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
    String::from_utf8(out).unwrap()
}

/// `minLength`, `maxLength` and the two `pattern`s the specs give path parameters (failover's).
fn check_path_parameter(parameter: &Value, value: &str, errors: &mut Vec<String>) {
    let name = parameter["name"].as_str().unwrap();
    let len = value.chars().count() as u64;
    if parameter["minLength"].as_u64().is_some_and(|min| len < min)
        || parameter["maxLength"].as_u64().is_some_and(|max| len > max)
    {
        errors.push(format!("path {name}: length {len} out of bounds"));
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
        other => panic!("pattern {other} not handled"),
    };
    if !ok {
        errors.push(format!("path {name}: {value:?} does not match {pattern}"));
    }
}

/// The spec for `request`: its resource's file in its api-version.
fn spec_for(request: &ArmRequest, version: &str) -> Spec {
    let stable = version == API_VERSION;
    let text = if request.path.contains("/distributedAvailabilityGroups/") {
        if stable { DAG_STABLE } else { DAG_PREVIEW }
    } else if request.path.contains("/serverTrustCertificates/") {
        if stable { STC_STABLE } else { STC_PREVIEW }
    } else if stable {
        EC_STABLE
    } else {
        EC_PREVIEW
    };
    Spec::parse(text)
}

fn instance() -> InstanceId {
    InstanceId::from_parts("sub", "rg", "tailspin-mi").unwrap()
}

fn link_properties(
    mode: LinkMode,
    role: Side,
    failover: FailoverMode,
    seeding: SeedingMode,
) -> LinkProperties {
    LinkProperties {
        instance_link_role: role,
        instance_ag: AgName::new("AG_ToyStore_MI").unwrap(),
        partner_ag: AgName::new("AG_ToyStore").unwrap(),
        partner_endpoint: "TCP://10.0.1.4:5022".into(),
        failover_mode: failover,
        seeding_mode: seeding,
        link_mode: mode,
        databases: match mode {
            LinkMode::SingleDatabase => vec![DatabaseName::new("ToyStore").unwrap()],
            LinkMode::MultiDatabase => vec![
                DatabaseName::new("ToyStore").unwrap(),
                DatabaseName::new("ToyStore_Archive").unwrap(),
            ],
        },
    }
}

/// Every `InstanceOp` with every value of its enums, on a single-database link (`DAG_ToyStore`)
/// and, for the link's operations, on a MultiDatabase link (`dag-toystore`).
fn every_op() -> Vec<InstanceOp> {
    let mut ops = vec![
        InstanceOp::PutServerTrustCertificate {
            name: CertificateName::new("Cert_TailspinSql_endpoint").unwrap(),
            public_blob: vec![0x30, 0x82, 0x01, 0x0a],
        },
        InstanceOp::GetEndpointCertificate,
        InstanceOp::DeleteServerTrustCertificate {
            name: CertificateName::new("Cert_TailspinSql_endpoint").unwrap(),
        },
    ];
    for (mode, name) in [
        (LinkMode::SingleDatabase, "DAG_ToyStore"),
        (LinkMode::MultiDatabase, "dag-toystore"),
    ] {
        let link = LinkName::new(name).unwrap();
        link.check_mode(mode).unwrap();
        for role in [Side::SqlServer, Side::ManagedInstance] {
            for failover in [FailoverMode::Manual, FailoverMode::None] {
                for seeding in [SeedingMode::Automatic, SeedingMode::Manual] {
                    ops.push(InstanceOp::PutLink {
                        link: link.clone(),
                        properties: link_properties(mode, role, failover, seeding),
                    });
                }
            }
            for change in [RoleChangeType::Planned, RoleChangeType::Forced] {
                ops.push(InstanceOp::SetRole {
                    link: link.clone(),
                    role,
                    change,
                });
            }
        }
        for mode in [
            AvailabilityMode::SynchronousCommit,
            AvailabilityMode::AsynchronousCommit,
        ] {
            ops.push(InstanceOp::SetReplicationMode {
                link: link.clone(),
                mode,
            });
        }
        for failover_type in [
            ArmFailoverType::Planned,
            ArmFailoverType::ForcedAllowDataLoss,
        ] {
            ops.push(InstanceOp::Failover {
                link: link.clone(),
                failover_type,
            });
        }
        ops.push(InstanceOp::DeleteLink { link: link.clone() });
    }
    // A new InstanceOp fails to compile here until it is added above.
    for op in &ops {
        match op {
            InstanceOp::PutServerTrustCertificate { .. }
            | InstanceOp::GetEndpointCertificate
            | InstanceOp::PutLink { .. }
            | InstanceOp::SetReplicationMode { .. }
            | InstanceOp::Failover { .. }
            | InstanceOp::SetRole { .. }
            | InstanceOp::DeleteLink { .. }
            | InstanceOp::DeleteServerTrustCertificate { .. } => {}
        }
    }
    ops
}

fn is_multi_database_failover(op: &InstanceOp) -> bool {
    matches!(op, InstanceOp::Failover { link, .. } if link.as_str() == "dag-toystore")
}

#[test]
fn every_request_validates_against_its_spec() {
    let ops = every_op();
    assert_eq!(ops.len(), 3 + 2 * (2 * (4 + 2) + 2 + 2 + 1));
    for op in &ops {
        let request = request(op, &instance());
        let errors = spec_for(&request, request.api_version).check(&request);
        if is_multi_database_failover(op) {
            // The specs contradict themselves: a MultiDatabase link's name must be lowercase
            // letters, digits and hyphens (InvalidMultiDbDistributedAvailabilityGroupName), but
            // failover declares its name as `^[#a-zA-Z_][\w@#$]*$`, with no hyphen. Only a
            // client that validates path patterns refuses it; milink sends it.
            assert_eq!(errors.len(), 1, "{op:?}: {errors:?}");
            assert!(errors[0].contains("does not match"), "{errors:?}");
            continue;
        }
        assert!(
            errors.is_empty(),
            "{op:?} {} {}: {errors:?}",
            request.method,
            request.path
        );
    }
}

/// A request milink sends on the stable api-version is valid on the preview too; a MultiDatabase
/// link (linkMode) is refused by the stable spec, which has no such property.
#[test]
fn stable_requests_also_fit_the_preview_and_link_mode_does_not_fit_stable() {
    for op in every_op() {
        let request = request(&op, &instance());
        if is_multi_database_failover(&op) {
            continue;
        }
        if request.api_version == API_VERSION {
            let preview = ArmRequest {
                api_version: PREVIEW_API_VERSION,
                ..request.clone()
            };
            let errors = spec_for(&preview, PREVIEW_API_VERSION).check(&preview);
            assert!(errors.is_empty(), "{op:?}: {errors:?}");
        } else {
            let stable = ArmRequest {
                api_version: API_VERSION,
                ..request.clone()
            };
            let errors = spec_for(&stable, API_VERSION).check(&stable);
            assert_eq!(
                errors,
                ["$.properties.linkMode: unknown property"],
                "{op:?}"
            );
        }
    }
}

/// The examples' own request bodies validate (the validator accepts what the specs show).
#[test]
fn example_request_bodies_validate() {
    let mut checked = 0;
    for (version, name, example) in super::examples_tests::all_examples() {
        let Some(body) = example["parameters"].get("parameters") else {
            continue;
        };
        let api = example["parameters"]["api-version"].as_str().unwrap();
        let (method, tail) = match name {
            n if n.contains("Create") => (Method::Put, ""),
            n if n.contains("Update") => (Method::Patch, ""),
            n if n.ends_with("Failover") => (Method::Post, "/failover"),
            n if n.ends_with("SetRole") => (Method::Post, "/setRole"),
            other => panic!("no method for {other}"),
        };
        let collection = if name.starts_with("Distributed") {
            "distributedAvailabilityGroups/dag"
        } else {
            "serverTrustCertificates/customerCertificateName"
        };
        let request = ArmRequest {
            method,
            path: format!("{}/{collection}{tail}", instance()),
            api_version: if api == API_VERSION {
                API_VERSION
            } else {
                PREVIEW_API_VERSION
            },
            body: Some(body.clone()),
        };
        let errors = spec_for(&request, request.api_version).check(&request);
        assert!(errors.is_empty(), "{version}/{name}: {errors:?}");
        checked += 1;
    }
    assert_eq!(checked, 13);
}

fn put_link_request() -> ArmRequest {
    request(
        &InstanceOp::PutLink {
            link: LinkName::new("DAG_ToyStore").unwrap(),
            properties: link_properties(
                LinkMode::SingleDatabase,
                Side::SqlServer,
                FailoverMode::Manual,
                SeedingMode::Automatic,
            ),
        },
        &instance(),
    )
}

fn errors_with(mut request: ArmRequest, edit: impl FnOnce(&mut Value)) -> Vec<String> {
    edit(request.body.get_or_insert(Value::Null));
    spec_for(&request, request.api_version).check(&request)
}

/// A change to a body.
type Edit = Box<dyn FnOnce(&mut Value)>;

/// Each refusal of the validator, proven with a hand-made bad body.
#[test]
fn bad_bodies_are_refused() {
    assert!(errors_with(put_link_request(), |_| {}).is_empty());
    let cases: Vec<(&str, Edit)> = vec![
        (
            "unknown property",
            Box::new(|b| b["properties"]["targetDatabase"] = json!("ToyStore")),
        ),
        (
            "unknown property",
            Box::new(|b| b["location"] = json!("westus")),
        ),
        (
            "unknown property",
            Box::new(|b| b["properties"]["databases"][0]["name"] = json!("x")),
        ),
        (
            "read-only",
            Box::new(|b| b["properties"]["partnerLinkRole"] = json!("Primary")),
        ),
        (
            "read-only",
            Box::new(|b| b["id"] = json!("/subscriptions/sub")),
        ),
        (
            "read-only",
            Box::new(|b| b["properties"]["databases"][0]["replicaState"] = json!("Seeding")),
        ),
        (
            "read-only",
            Box::new(|b| b["properties"]["databases"][0]["partnerAuthCertValidity"] = json!({})),
        ),
        (
            "is not one of",
            Box::new(|b| b["properties"]["failoverMode"] = json!("Automatic")),
        ),
        (
            "is not one of",
            Box::new(|b| b["properties"]["instanceLinkRole"] = json!("primary")),
        ),
        (
            "is not of type string",
            Box::new(|b| b["properties"]["partnerEndpoint"] = json!(5022)),
        ),
        (
            "is not of type array",
            Box::new(|b| b["properties"]["databases"] = json!({"databaseName": "x"})),
        ),
        (
            "is not of type object",
            Box::new(|b| b["properties"] = json!([])),
        ),
    ];
    for (expected, edit) in cases {
        let errors = errors_with(put_link_request(), edit);
        assert_eq!(errors.len(), 1, "{expected}: {errors:?}");
        assert!(errors[0].contains(expected), "{expected}: {errors:?}");
    }

    let failover = request(
        &InstanceOp::Failover {
            link: LinkName::new("DAG_ToyStore").unwrap(),
            failover_type: ArmFailoverType::Planned,
        },
        &instance(),
    );
    let errors = errors_with(failover.clone(), |b| *b = json!({}));
    assert_eq!(errors, ["$: required property failoverType is missing"]);
    let errors = errors_with(failover.clone(), |b| b["failoverType"] = json!("Forced"));
    assert!(errors[0].contains("is not one of"), "{errors:?}");
    let mut no_body = failover.clone();
    no_body.body = None;
    assert_eq!(
        spec_for(&no_body, API_VERSION).check(&no_body),
        ["post needs a body"]
    );
    let set_role = request(
        &InstanceOp::SetRole {
            link: LinkName::new("DAG_ToyStore").unwrap(),
            role: Side::ManagedInstance,
            change: RoleChangeType::Forced,
        },
        &instance(),
    );
    let errors = errors_with(set_role, |b| {
        b.as_object_mut().unwrap().remove("roleChangeType");
    });
    assert_eq!(errors, ["$: required property roleChangeType is missing"]);
    // A body where the spec takes none, a wrong api-version, a path the spec does not have.
    let mut delete = request(
        &InstanceOp::DeleteLink {
            link: LinkName::new("DAG_ToyStore").unwrap(),
        },
        &instance(),
    );
    delete.body = Some(json!({}));
    assert_eq!(
        spec_for(&delete, API_VERSION).check(&delete),
        ["delete takes no body"]
    );
    delete.body = None;
    delete.api_version = "2023-08-01";
    assert!(spec_for(&delete, API_VERSION).check(&delete)[0].contains("api-version"));
    delete.api_version = API_VERSION;
    delete.path.push_str("/restart");
    assert!(spec_for(&delete, API_VERSION).check(&delete)[0].contains("no operation"));
    // A certificate body with a read-only thumbprint.
    let put_cert = request(
        &InstanceOp::PutServerTrustCertificate {
            name: CertificateName::new("Cert_TailspinSql_endpoint").unwrap(),
            public_blob: vec![0x30],
        },
        &instance(),
    );
    let errors = errors_with(put_cert, |b| b["properties"]["thumbprint"] = json!("AB"));
    assert_eq!(
        errors,
        ["$.properties.thumbprint: read-only property in a request"]
    );
}

#[test]
fn path_patterns_of_failover_are_checked() {
    let mut errors = Vec::new();
    let mi = json!({"name": "managedInstanceName", "minLength": 1, "maxLength": 63,
                    "pattern": "^[a-z0-9]+(?:-[a-z0-9]+)*$"});
    for good in ["tailspin-mi", "mi1", "a-b-c"] {
        check_path_parameter(&mi, good, &mut errors);
    }
    assert!(errors.is_empty(), "{errors:?}");
    for bad in ["Tailspin", "-mi", "mi-", "a--b", "", &"a".repeat(64)] {
        let mut errors = Vec::new();
        check_path_parameter(&mi, bad, &mut errors);
        assert!(!errors.is_empty(), "{bad:?}");
    }
    let dag =
        json!({"name": "distributedAvailabilityGroupName", "pattern": r"^[#a-zA-Z_][\w@#$]*$"});
    for (name, ok) in [
        ("DAG_ToyStore", true),
        ("#x@$", true),
        ("1dag", false),
        ("dag-toystore", false),
    ] {
        let mut errors = Vec::new();
        check_path_parameter(&dag, name, &mut errors);
        assert_eq!(errors.is_empty(), ok, "{name}");
    }
}

/// The two api-versions differ, for the resources milink uses, only in the link's `linkMode`
/// (and the error catalogues in the operations' descriptions).
#[test]
fn the_api_versions_differ_only_in_link_mode() {
    for (stable, preview) in [
        (DAG_STABLE, DAG_PREVIEW),
        (STC_STABLE, STC_PREVIEW),
        (EC_STABLE, EC_PREVIEW),
    ] {
        let (s, p) = (Spec::parse(stable).doc, Spec::parse(preview).doc);
        assert_eq!(
            s["paths"].as_object().unwrap().keys().collect::<Vec<_>>(),
            p["paths"].as_object().unwrap().keys().collect::<Vec<_>>()
        );
        let mut differ = Vec::new();
        for (name, definition) in s["definitions"].as_object().unwrap() {
            if p["definitions"][name] != *definition {
                differ.push(name.clone());
            }
        }
        assert_eq!(
            p["definitions"].as_object().unwrap().len(),
            s["definitions"].as_object().unwrap().len()
        );
        if differ.is_empty() {
            continue;
        }
        assert_eq!(differ, ["DistributedAvailabilityGroupProperties"]);
        let (mut sp, mut pp) = (
            s["definitions"]["DistributedAvailabilityGroupProperties"]["properties"].clone(),
            p["definitions"]["DistributedAvailabilityGroupProperties"]["properties"].clone(),
        );
        let link_mode = pp.as_object_mut().unwrap().remove("linkMode").unwrap();
        assert_eq!(
            link_mode["enum"],
            json!(["SingleDatabase", "MultiDatabase"])
        );
        assert!(link_mode.get("readOnly").is_none());
        assert_eq!(sp.as_object_mut().unwrap().remove("linkMode"), None);
        assert_eq!(sp, pp);
    }
}
