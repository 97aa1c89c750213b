//! A small validator of requests against the official Swagger files (`testdata/`), for the
//! subset these specs use. A JSON-schema crate would bring an HTTP client and does not know
//! Swagger's `readOnly`, nor that the specs' objects are meant closed: local `$ref`s and the two
//! common files' types defined here, `type`, `properties`, `required`, `enum`, `items`, `allOf`,
//! `additionalProperties`, `readOnly` (a read-only property in a request is an error), and the
//! path parameters' `minLength`/`maxLength`/`pattern` (the two patterns the specs use). A property
//! no schema declares is refused. `x-ms-*` is ignored.

use serde_json::{Map, Value, json};

use super::{API_VERSION, ArmRequest};

pub(super) const DAG_STABLE: &str =
    include_str!("testdata/stable/2025-01-01/DistributedAvailabilityGroups.json");
pub(super) const DAG_PREVIEW: &str =
    include_str!("testdata/preview/2025-08-01-preview/DistributedAvailabilityGroups.json");
pub(super) const STC_STABLE: &str =
    include_str!("testdata/stable/2025-01-01/ServerTrustCertificates.json");
pub(super) const STC_PREVIEW: &str =
    include_str!("testdata/preview/2025-08-01-preview/ServerTrustCertificates.json");
pub(super) const EC_STABLE: &str =
    include_str!("testdata/stable/2025-01-01/EndpointCertificates.json");
pub(super) const EC_PREVIEW: &str =
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
pub(super) struct Spec {
    pub(super) doc: Value,
}

impl Spec {
    pub(super) fn parse(text: &str) -> Spec {
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
    pub(super) fn check(&self, request: &ArmRequest) -> Vec<String> {
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
pub(super) fn check_path_parameter(parameter: &Value, value: &str, errors: &mut Vec<String>) {
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
pub(super) fn spec_for(request: &ArmRequest, version: &str) -> Spec {
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
