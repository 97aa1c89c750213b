//! Every request [`super::request`] renders validates against its operation in the official
//! Swagger files (`testdata/`; validator in [`super::spec`]): path template and path
//! parameters, api-version, and the body against the operation's body schema. Each refusal of the
//! validator is proven with a hand-made bad body.

use serde_json::{Value, json};

use super::spec::*;
use super::*;
use crate::lifecycle::{LinkProperties, Side};
use crate::names::{AgName, CertificateName, DatabaseName, LinkName};

pub(crate) fn instance() -> InstanceId {
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
pub(crate) fn every_op() -> Vec<InstanceOp> {
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
        if mode == LinkMode::MultiDatabase {
            ops.push(InstanceOp::SetLinkDatabases {
                link: link.clone(),
                databases: vec![
                    DatabaseName::new("ToyStore").unwrap(),
                    DatabaseName::new("ToyStore_Archive").unwrap(),
                    DatabaseName::new("ToyStore_Returns").unwrap(),
                ],
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
            | InstanceOp::SetLinkDatabases { .. }
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
    assert_eq!(ops.len(), 3 + 2 * (2 * (4 + 2) + 2 + 2 + 1) + 1);
    for op in &ops {
        let request = request(op, &instance());
        let errors = spec_for(&request, request.api_version).check_request(&request);
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
/// link (linkMode) is refused by the stable spec, which has no such property. A new database list
/// is sent on the preview (only there is a link MultiDatabase) though its body fits both.
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
            let errors = spec_for(&preview, PREVIEW_API_VERSION).check_request(&preview);
            assert!(errors.is_empty(), "{op:?}: {errors:?}");
        } else {
            let stable = ArmRequest {
                api_version: API_VERSION,
                ..request.clone()
            };
            let errors = spec_for(&stable, API_VERSION).check_request(&stable);
            if matches!(op, InstanceOp::SetLinkDatabases { .. }) {
                assert!(errors.is_empty(), "{op:?}: {errors:?}");
                continue;
            }
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
        let errors = spec_for(&request, request.api_version).check_request(&request);
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
    spec_for(&request, request.api_version).check_request(&request)
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
        spec_for(&no_body, API_VERSION).check_request(&no_body),
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
        spec_for(&delete, API_VERSION).check_request(&delete),
        ["delete takes no body"]
    );
    delete.body = None;
    delete.api_version = "2023-08-01";
    assert!(spec_for(&delete, API_VERSION).check_request(&delete)[0].contains("api-version"));
    delete.api_version = API_VERSION;
    delete.path.push_str("/restart");
    assert!(spec_for(&delete, API_VERSION).check_request(&delete)[0].contains("no operation"));
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
        let (s, p) = (
            Spec::parse(stable).unwrap().doc,
            Spec::parse(preview).unwrap().doc,
        );
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

/// The 409 codes milink types (`errors::LINK_409`, `errors::BUSY_409`) are 409s of the link's
/// operations in the specs' error catalogues, and which version lists which is known.
#[test]
fn typed_409_codes_are_in_the_catalogues() {
    let catalogue = |text: &str| {
        let doc = Spec::parse(text).unwrap().doc;
        let mut codes = std::collections::BTreeSet::new();
        for ops in doc["paths"].as_object().unwrap().values() {
            for op in ops.as_object().unwrap().values() {
                let text = op["responses"]["default"]["description"]
                    .as_str()
                    .unwrap_or("");
                for line in text.lines() {
                    let mut words = line.trim_start_matches([' ', '*']).split_whitespace();
                    if let (Some(status), Some(code)) = (words.next(), words.next()) {
                        codes.insert((status.to_owned(), code.to_owned()));
                    }
                }
            }
        }
        codes
    };
    let (stable, preview) = (catalogue(DAG_STABLE), catalogue(DAG_PREVIEW));
    let in_409 = |set: &std::collections::BTreeSet<(String, String)>, code: &str| {
        set.contains(&("409".to_owned(), code.to_owned()))
    };
    for code in errors::LINK_409
        .iter()
        .map(|(c, _)| *c)
        .chain(errors::BUSY_409.iter().copied())
    {
        assert!(in_409(&stable, code) || in_409(&preview, code), "{code}");
    }
    let stable_only = "DistributedAvailabilityGroupSetRolePrimaryPlannedNotSupported";
    assert!(in_409(&stable, stable_only) && !in_409(&preview, stable_only));
    for preview_only in [
        "DistributedAvailabilityGroupForcedFailoverWrongDbVersion",
        "ManagedInstanceHasHybridLink",
    ] {
        assert!(in_409(&preview, preview_only) && !in_409(&stable, preview_only));
    }
    // The preview renames the planned-failover role error (both 400).
    assert!(stable.contains(&(
        "400".into(),
        "InvalidDistributedAvailabilityGroupFailoverInstanceRole".into()
    )));
    assert!(preview.contains(&(
        "400".into(),
        "DistributedAvailabilityGroupFailoverInvalidInstanceRole".into()
    )));
}
