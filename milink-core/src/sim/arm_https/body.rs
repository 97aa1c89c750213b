//! Request bodies read by the REST API's grammar: JSON fields into the values of an
//! [`InstanceOp`]. Enum values match case-insensitively, as ARM reads them.

use serde_json::{Map, Value};

use crate::arm::PREVIEW_API_VERSION;
use crate::lifecycle::{FailoverMode, InstanceOp, LinkProperties, SeedingMode, Side};
use crate::names::{AgName, DatabaseName, LinkMode, LinkName};

use super::resources::Reply;

/// 400 `InvalidRequestContent`.
pub(crate) fn invalid_content(message: impl std::fmt::Display) -> Reply {
    Reply::error(
        400,
        "InvalidRequestContent",
        format!("The request content was invalid and could not be deserialized: {message}"),
    )
}

/// A required top-level field.
pub(crate) fn required<'v>(body: &'v Value, field: &str) -> Result<&'v Value, Reply> {
    body.get(field)
        .ok_or_else(|| invalid_content(format!("'{field}' is required")))
}

/// An enum value as ARM reads it: a string, matched case-insensitively.
pub(crate) fn enum_value<T: Copy>(
    v: &Value,
    field: &str,
    values: &[(&str, T)],
) -> Result<T, Reply> {
    let s = v
        .as_str()
        .ok_or_else(|| invalid_content(format!("'{field}' must be a string")))?;
    values
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(s))
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = values.iter().map(|(n, _)| *n).collect();
            invalid_content(format!(
                "'{field}' must be one of {}, not '{s}'",
                names.join(", ")
            ))
        })
}

/// `publicBlob`: hex, with or without `0x`.
pub(crate) fn decode_hex(blob: &str) -> Option<Vec<u8>> {
    let hex = blob
        .strip_prefix("0x")
        .or_else(|| blob.strip_prefix("0X"))
        .unwrap_or(blob);
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect()
}

/// The body of `DistributedAvailabilityGroups_CreateOrUpdate`, with the spec's defaults
/// (`instanceLinkRole` Secondary, `failoverMode` None, `seedingMode` Automatic, `linkMode`
/// SingleDatabase; `linkMode` only in the preview api-version).
/// A `databases` array (`[{"databaseName": …}]`) as database names.
pub(crate) fn database_list(v: &Value) -> Result<Vec<DatabaseName>, Reply> {
    v.as_array()
        .ok_or_else(|| invalid_content("properties.databases (array) is required"))?
        .iter()
        .map(|d| {
            let name = d
                .get("databaseName")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid_content("databases[].databaseName (string) is required"))?;
            DatabaseName::new(name).map_err(name_err)
        })
        .collect()
}

fn name_err(e: crate::names::NameError) -> Reply {
    Reply::error(400, "InvalidParameterValue", e.to_string())
}

pub(crate) fn put_link(link: LinkName, body: &Value, api: &str) -> Result<InstanceOp, Reply> {
    let p: &Map<String, Value> = body
        .get("properties")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid_content("'properties' (object) is required"))?;
    let text = |field: &str| -> Result<&str, Reply> {
        p.get(field)
            .and_then(Value::as_str)
            .ok_or_else(|| invalid_content(format!("properties.{field} (string) is required")))
    };
    let instance_ag = AgName::new(text("instanceAvailabilityGroupName")?).map_err(name_err)?;
    let partner_ag = AgName::new(text("partnerAvailabilityGroupName")?).map_err(name_err)?;
    let partner_endpoint = text("partnerEndpoint")?.to_owned();
    let pick = |field: &str| p.get(field);
    let instance_link_role = match pick("instanceLinkRole") {
        None => Side::SqlServer,
        Some(v) => enum_value(
            v,
            "instanceLinkRole",
            &[
                ("Primary", Side::ManagedInstance),
                ("Secondary", Side::SqlServer),
            ],
        )?,
    };
    let failover_mode = match pick("failoverMode") {
        None => FailoverMode::None,
        Some(v) => enum_value(
            v,
            "failoverMode",
            &[
                ("Manual", FailoverMode::Manual),
                ("None", FailoverMode::None),
            ],
        )?,
    };
    let seeding_mode = match pick("seedingMode") {
        None => SeedingMode::Automatic,
        Some(v) => enum_value(
            v,
            "seedingMode",
            &[
                ("Automatic", SeedingMode::Automatic),
                ("Manual", SeedingMode::Manual),
            ],
        )?,
    };
    let link_mode = match pick("linkMode") {
        None => LinkMode::SingleDatabase,
        Some(_) if api != PREVIEW_API_VERSION => {
            return Err(invalid_content(format!(
                "properties.linkMode exists only in api-version {PREVIEW_API_VERSION}"
            )));
        }
        Some(v) => enum_value(
            v,
            "linkMode",
            &[
                ("SingleDatabase", LinkMode::SingleDatabase),
                ("MultiDatabase", LinkMode::MultiDatabase),
            ],
        )?,
    };
    let databases = database_list(
        p.get("databases")
            .ok_or_else(|| invalid_content("properties.databases (array) is required"))?,
    )?;
    Ok(InstanceOp::PutLink {
        link,
        properties: LinkProperties {
            instance_link_role,
            instance_ag,
            partner_ag,
            partner_endpoint,
            failover_mode,
            seeding_mode,
            link_mode,
            databases,
        },
    })
}
