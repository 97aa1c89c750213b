//! Every official example response of the copied specs (`testdata/`, both api-versions) reads
//! into [`super::models`], and the fields milink uses keep their values.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::models::*;

const STABLE: &str = "stable/2025-01-01";
pub(super) const PREVIEW: &str = "preview/2025-08-01-preview";

macro_rules! examples {
    ($($name:literal),+ $(,)?) => {
        /// (api-version folder, example name, text) of every example file, both versions.
        const EXAMPLES: &[(&str, &str, &str)] = &[
            $(
                (STABLE, $name, include_str!(concat!("testdata/stable/2025-01-01/examples/", $name, ".json"))),
                (PREVIEW, $name, include_str!(concat!("testdata/preview/2025-08-01-preview/examples/", $name, ".json"))),
            )+
            (
                PREVIEW,
                "DistributedAvailabilityGroupsUpdateDatabases",
                include_str!("testdata/preview/2025-08-01-preview/examples/DistributedAvailabilityGroupsUpdateDatabases.json"),
            ),
        ];
    };
}

examples!(
    "DistributedAvailabilityGroupsCreateMax",
    "DistributedAvailabilityGroupsCreateMin",
    "DistributedAvailabilityGroupsDelete",
    "DistributedAvailabilityGroupsFailover",
    "DistributedAvailabilityGroupsGet",
    "DistributedAvailabilityGroupsListByInstance",
    "DistributedAvailabilityGroupsSetRole",
    "DistributedAvailabilityGroupsUpdate",
    "EndpointCertificatesGet",
    "EndpointCertificatesListByInstance",
    "ManagedInstanceGet",
    "ServerTrustCertificatesCreate",
    "ServerTrustCertificatesDelete",
    "ServerTrustCertificatesGet",
    "ServerTrustCertificatesListByInstance",
);

pub(super) fn example(version: &str, name: &str) -> Value {
    let (_, _, text) = EXAMPLES
        .iter()
        .find(|(v, n, _)| *v == version && *n == name)
        .unwrap_or_else(|| panic!("no example {version}/{name}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{version}/{name}: {e}"))
}

/// The body of response `code` of an example, read as `T`.
fn body<T: DeserializeOwned>(version: &str, name: &str, code: &str) -> T {
    let example = example(version, name);
    let body = example["responses"][code]["body"].clone();
    assert!(!body.is_null(), "{version}/{name} {code} has no body");
    serde_json::from_value(body).unwrap_or_else(|e| panic!("{version}/{name} {code}: {e}"))
}

pub(super) fn all_examples() -> impl Iterator<Item = (&'static str, &'static str, Value)> {
    EXAMPLES.iter().map(|(v, n, text)| {
        let value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{v}/{n}: {e}"));
        (*v, *n, value)
    })
}

#[test]
fn every_example_file_in_testdata_is_embedded() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/arm/testdata");
    let mut on_disk = Vec::new();
    for version in [STABLE, PREVIEW] {
        for entry in std::fs::read_dir(root.join(version).join("examples")).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            on_disk.push((version, name.trim_end_matches(".json").to_owned()));
        }
    }
    on_disk.sort();
    let mut embedded: Vec<_> = EXAMPLES
        .iter()
        .map(|(v, n, _)| (*v, (*n).to_owned()))
        .collect();
    embedded.sort();
    assert_eq!(on_disk, embedded);
    assert_eq!(embedded.len(), 31);
}

/// Every response body of every example reads into the model of its resource.
#[test]
fn every_example_response_deserializes() {
    let mut bodies = 0;
    for (version, name, example) in all_examples() {
        assert_eq!(
            example["parameters"]["api-version"],
            version.rsplit('/').next().unwrap(),
            "{version}/{name}"
        );
        for (code, response) in example["responses"].as_object().unwrap() {
            let Some(body) = response.get("body") else {
                continue;
            };
            bodies += 1;
            let b = body.clone();
            let what = format!("{version}/{name} {code}");
            let read = if name.starts_with("DistributedAvailabilityGroups") {
                if name.ends_with("ListByInstance") {
                    serde_json::from_value::<Page<DistributedAvailabilityGroup>>(b).map(drop)
                } else {
                    serde_json::from_value::<DistributedAvailabilityGroup>(b).map(drop)
                }
            } else if name.starts_with("ServerTrustCertificates") {
                if name.ends_with("ListByInstance") {
                    serde_json::from_value::<Page<ServerTrustCertificate>>(b).map(drop)
                } else {
                    serde_json::from_value::<ServerTrustCertificate>(b).map(drop)
                }
            } else if name.starts_with("EndpointCertificates") {
                if name.ends_with("ListByInstance") {
                    serde_json::from_value::<Page<EndpointCertificate>>(b).map(drop)
                } else {
                    serde_json::from_value::<EndpointCertificate>(b).map(drop)
                }
            } else if name == "ManagedInstanceGet" {
                serde_json::from_value::<ManagedInstance>(b).map(drop)
            } else {
                panic!("no model for {what}");
            };
            read.unwrap_or_else(|e| panic!("{what}: {e}"));
        }
    }
    // 200/201 of the create examples, the gets, lists, updates, failover and setRole.
    assert_eq!(bodies, 33);
}

#[test]
fn managed_instance_get_keeps_what_the_link_needs() {
    for version in [STABLE, PREVIEW] {
        let mi: ManagedInstance = body(version, "ManagedInstanceGet", "200");
        let p = &mi.properties;
        assert_eq!(
            p.fully_qualified_domain_name.as_deref(),
            Some("testinstance.1b4e2caff2530.database.windows.net")
        );
        assert_eq!(p.dns_zone.as_deref(), Some("1b4e2caff2530"));
        assert_eq!(p.state.as_deref(), Some("Ready"));
        assert_eq!(p.provisioning_state, Some(ProvisioningState::Succeeded));
        assert_eq!(p.database_format, Some(DatabaseFormat::SqlServer2022));
        assert_eq!(
            p.hybrid_secondary_usage,
            Some(HybridSecondaryUsage::Passive)
        );
        assert_eq!(p.v_cores, Some(8));
        assert_eq!(p.storage_size_in_gb, Some(1024));
        let sku = mi.sku.unwrap();
        assert_eq!(sku.tier.as_deref(), Some("GeneralPurpose"));
        assert_eq!(sku.capacity, Some(8));
        assert_eq!(mi.name.as_deref(), Some("testinstance"));
        assert_eq!(mi.location.as_deref(), Some("japaneast"));
    }
}

#[test]
fn link_get_reads_roles_modes_and_replica_states() {
    for version in [STABLE, PREVIEW] {
        let dag: DistributedAvailabilityGroup =
            body(version, "DistributedAvailabilityGroupsGet", "200");
        assert_eq!(dag.name.as_deref(), Some("dag"));
        let p = &dag.properties;
        assert_eq!(
            p.distributed_availability_group_id.as_deref(),
            Some("c856cff5-a6fe-418e-8894-17799cc20f5d")
        );
        assert_eq!(p.replication_mode, Some(ReplicationMode::Async));
        assert_eq!(p.partner_link_role, Some(LinkRole::Secondary));
        assert_eq!(p.instance_link_role, Some(LinkRole::Primary));
        assert_eq!(p.partner_endpoint.as_deref(), Some("TCP://SERVER:7022"));
        assert_eq!(
            p.partner_availability_group_name.as_deref(),
            Some("BoxLocalAg1")
        );
        assert_eq!(
            p.instance_availability_group_name.as_deref(),
            Some("testcl")
        );
        assert_eq!(p.failover_mode, Some(ArmFailoverMode::None));
        assert_eq!(p.seeding_mode, Some(ArmSeedingMode::Automatic));
        // linkMode exists only in the preview.
        let mode = (version == PREVIEW).then_some(ArmLinkMode::SingleDatabase);
        assert_eq!(p.link_mode, mode, "{version}");
        let [db] = p.databases.as_slice() else {
            panic!("one database")
        };
        assert_eq!(db.database_name.as_deref(), Some("testdb"));
        assert_eq!(db.replica_state.as_deref(), Some("Seeding"));
        assert_eq!(db.seeding_progress.as_deref(), Some("80%"));
        assert_eq!(
            db.synchronization_health,
            Some(SynchronizationHealth::Healthy)
        );
        assert_eq!(db.connected_state, Some(ConnectedState::Connected));
        assert_eq!(
            DagDatabase::lsn(db.last_hardened_lsn.as_deref()),
            Some(71_000_009_408_100_001)
        );
        assert!(
            DagDatabase::lsn(db.last_commit_lsn.as_deref())
                > DagDatabase::lsn(db.last_received_lsn.as_deref())
        );
        assert_eq!(db.instance_send_replication_lag_seconds, Some(1));
        assert_eq!(db.instance_redo_replication_lag_seconds, Some(1));
    }
}

#[test]
fn link_lists_read_both_links_and_the_preview_multi_database_one() {
    for version in [STABLE, PREVIEW] {
        let page: Page<DistributedAvailabilityGroup> = body(
            version,
            "DistributedAvailabilityGroupsListByInstance",
            "200",
        );
        assert_eq!(page.next_link, None);
        let [dag, dag2] = page.value.as_slice() else {
            panic!("two links")
        };
        assert_eq!(dag.name.as_deref(), Some("dag"));
        assert_eq!(
            dag.properties.databases[0].replica_state.as_deref(),
            Some("Catchup")
        );
        assert_eq!(
            dag2.properties.instance_link_role,
            Some(LinkRole::Secondary)
        );
        assert_eq!(dag2.properties.partner_link_role, Some(LinkRole::Primary));
        // dag2 has no failoverMode in either version.
        assert_eq!(dag2.properties.failover_mode, None);
        if version == PREVIEW {
            assert_eq!(dag2.properties.link_mode, Some(ArmLinkMode::MultiDatabase));
            let names: Vec<_> = dag2
                .properties
                .databases
                .iter()
                .map(|d| d.database_name.as_deref().unwrap())
                .collect();
            assert_eq!(names, ["testdb1", "testdb2"]);
            assert_eq!(
                dag2.properties.databases[1].seeding_progress.as_deref(),
                Some("80%")
            );
        } else {
            assert_eq!(dag2.properties.link_mode, None);
            assert_eq!(dag2.properties.databases.len(), 1);
        }
    }
}

#[test]
fn preview_update_databases_reads_per_database_states() {
    let dag: DistributedAvailabilityGroup = body(
        PREVIEW,
        "DistributedAvailabilityGroupsUpdateDatabases",
        "200",
    );
    let p = &dag.properties;
    assert_eq!(p.link_mode, Some(ArmLinkMode::MultiDatabase));
    let states: Vec<_> = p
        .databases
        .iter()
        .map(|d| {
            (
                d.database_name.as_deref().unwrap(),
                d.replica_state.as_deref().unwrap(),
                d.synchronization_health.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(states.len(), 3);
    assert_eq!(
        states[0],
        ("testdb1", "Connected", SynchronizationHealth::Healthy)
    );
    assert_eq!(
        states[1],
        (
            "testdb2",
            "Seeding",
            SynchronizationHealth::PartiallyHealthy
        )
    );
    assert_eq!(p.databases[1].seeding_progress.as_deref(), Some("30%"));
    assert_eq!(
        DagDatabase::lsn(p.databases[1].last_hardened_lsn.as_deref()),
        Some(72_000_010_509_200_002)
    );
}

#[test]
fn link_writes_answer_with_the_link() {
    for version in [STABLE, PREVIEW] {
        for code in ["200", "201"] {
            let max: DistributedAvailabilityGroup =
                body(version, "DistributedAvailabilityGroupsCreateMax", code);
            assert_eq!(max.properties.instance_link_role, Some(LinkRole::Primary));
            assert_eq!(
                max.properties.databases[0].database_name.as_deref(),
                Some("testdb")
            );
            let min: DistributedAvailabilityGroup =
                body(version, "DistributedAvailabilityGroupsCreateMin", code);
            assert_eq!(min.properties.instance_link_role, Some(LinkRole::Secondary));
            assert_eq!(min.properties.failover_mode, Some(ArmFailoverMode::None));
            let mode = (version == PREVIEW).then_some(ArmLinkMode::SingleDatabase);
            assert_eq!(min.properties.link_mode, mode);
        }
        let update: DistributedAvailabilityGroup =
            body(version, "DistributedAvailabilityGroupsUpdate", "200");
        assert_eq!(
            update.properties.replication_mode,
            Some(ReplicationMode::Sync)
        );
        let failover: DistributedAvailabilityGroup =
            body(version, "DistributedAvailabilityGroupsFailover", "200");
        assert_eq!(
            failover.properties.instance_link_role,
            Some(LinkRole::Primary)
        );
        assert_eq!(
            failover.properties.partner_link_role,
            Some(LinkRole::Secondary)
        );
        // setRole's 200 body is partial: name and role only.
        let set_role: DistributedAvailabilityGroup =
            body(version, "DistributedAvailabilityGroupsSetRole", "200");
        assert_eq!(
            set_role.properties.instance_link_role,
            Some(LinkRole::Primary)
        );
        assert!(set_role.properties.databases.is_empty());
        // The 202s carry the operation's URL in Location (any case), and no body.
        for name in [
            "DistributedAvailabilityGroupsDelete",
            "DistributedAvailabilityGroupsFailover",
            "DistributedAvailabilityGroupsSetRole",
            "DistributedAvailabilityGroupsUpdate",
            "ServerTrustCertificatesDelete",
        ] {
            let headers = &example(version, name)["responses"]["202"]["headers"];
            let location = headers
                .as_object()
                .unwrap()
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("location"))
                .and_then(|(_, v)| v.as_str())
                .unwrap();
            assert!(location.contains("OperationResults/"), "{name}: {location}");
        }
    }
}

#[test]
fn server_trust_certificates_read_and_are_found_by_their_key() {
    for version in [STABLE, PREVIEW] {
        let created: ServerTrustCertificate = body(version, "ServerTrustCertificatesCreate", "201");
        assert_eq!(created.certificate_name(), Some("customerCertificateName"));
        assert_eq!(
            created.properties.public_blob.as_deref(),
            Some("308203AE30820296A0030201020210")
        );
        let got: ServerTrustCertificate = body(version, "ServerTrustCertificatesGet", "200");
        assert_eq!(
            got.properties.thumbprint.as_deref(),
            Some("57CFA9CF16F2FB2775AF059A95C6D5B897DA2C05")
        );
        // Get's blob has no 0x; it is the same key as the 0x form.
        assert!(got.holds(&normalize_blob("0x308203B23082021AA003020102021034C597BA").unwrap()));

        let page: Page<ServerTrustCertificate> =
            body(version, "ServerTrustCertificatesListByInstance", "200");
        assert_eq!(page.value.len(), 2);
        let second = &page.value[1];
        assert_eq!(second.name.as_deref(), Some("customerCertificate2"));
        let blob = second.properties.public_blob.as_deref().unwrap();
        assert!(blob.starts_with("0x"));
        let der = normalize_blob(blob).unwrap();
        assert_eq!(der.len(), 950);
        assert_eq!(&der[..4], &[0x30, 0x82, 0x03, 0xB2]);
        // Found by key under another name, and by name when no key matches.
        let found = find_certificate(&page.value, &der, "Cert_Other").unwrap();
        assert_eq!(found.name.as_deref(), Some("customerCertificate2"));
        let found = find_certificate(&page.value, b"\x30\x00", "customerCertificate1").unwrap();
        assert_eq!(found.name.as_deref(), Some("customerCertificate1"));
        assert!(find_certificate(&page.value, b"\x30\x00", "Cert_Other").is_none());
    }
}

#[test]
fn endpoint_certificates_read_the_mirroring_key() {
    for version in [STABLE, PREVIEW] {
        let ec: EndpointCertificate = body(version, "EndpointCertificatesGet", "200");
        assert_eq!(ec.name.as_deref(), Some(DATABASE_MIRRORING));
        let der = ec.der().unwrap();
        assert_eq!(der.len(), 19);
        assert_eq!(&der[..2], &[0x30, 0x82]);
        let page: Page<EndpointCertificate> =
            body(version, "EndpointCertificatesListByInstance", "200");
        let names: Vec<_> = page
            .value
            .iter()
            .map(|c| c.name.as_deref().unwrap())
            .collect();
        assert_eq!(names, ["SERVICE_BROKER", DATABASE_MIRRORING]);
        let mirroring = page
            .value
            .iter()
            .find(|c| c.name.as_deref() == Some(DATABASE_MIRRORING))
            .unwrap();
        assert_eq!(mirroring.der(), Some(der));
    }
}

#[test]
fn blobs_compare_by_their_bytes() {
    assert_eq!(normalize_blob("0x0aFF"), Some(vec![0x0a, 0xff]));
    assert_eq!(normalize_blob("0X0AFF"), Some(vec![0x0a, 0xff]));
    assert_eq!(normalize_blob(" 0a ff\n"), Some(vec![0x0a, 0xff]));
    assert_eq!(normalize_blob(""), Some(vec![]));
    assert_eq!(normalize_blob("0x0"), None);
    assert_eq!(normalize_blob("0xZZ"), None);
    assert_eq!(normalize_blob("0x0x00"), None);
    assert_eq!(normalize_blob("é0"), None);
    assert!(same_blob("0x3082", "3082"));
    assert!(!same_blob("0x3082", "3083"));
    assert!(!same_blob("zz", "zz"));
    // What milink sends reads back as the same bytes.
    let der = [0x30, 0x82, 0x0a, 0x00];
    assert_eq!(
        normalize_blob(&super::public_blob(&der)),
        Some(der.to_vec())
    );
}

#[test]
fn unknown_fields_are_ignored_and_unknown_values_kept() {
    let dag: DistributedAvailabilityGroup = serde_json::from_value(serde_json::json!({
        "name": "dag", "newTopLevel": {"x": 1},
        "properties": {
            "instanceLinkRole": "Tertiary", "linkMode": "Galactic", "futureField": [1, 2],
            "databases": [{"databaseName": "db", "synchronizationHealth": "SOMEWHAT",
                           "connectedState": "CONNECTED", "newState": true}]
        }
    }))
    .unwrap();
    let p = &dag.properties;
    assert_eq!(
        p.instance_link_role,
        Some(LinkRole::Other("Tertiary".into()))
    );
    assert_eq!(p.link_mode, Some(ArmLinkMode::Other("Galactic".into())));
    assert_eq!(p.link_mode.as_ref().unwrap().as_str(), "Galactic");
    assert_eq!(
        p.databases[0].synchronization_health,
        Some(SynchronizationHealth::Other("SOMEWHAT".into()))
    );
    // Values milink knows serialize as ARM writes them.
    assert_eq!(
        serde_json::to_value(DatabaseFormat::SqlServer2025).unwrap(),
        "SQLServer2025"
    );
    // A field of the wrong type is an error, not a panic.
    let wrong = serde_json::from_value::<ManagedInstance>(
        serde_json::json!({"properties": {"vCores": "eight"}}),
    );
    assert!(wrong.is_err());
}

#[test]
fn operation_status_and_error_envelope_read() {
    let status: OperationStatus = serde_json::from_str(
        r#"{"name":"5b0b","status":"Failed","startTime":"2026-01-01T00:00:00Z",
            "error":{"code":"ManagedInstanceLinkConnectivityIsNotEstablished","message":"no",
                     "details":[{"code":"Inner","message":"deeper"}],
                     "additionalInfo":[{"type":"PolicyViolation","info":{"a":1}}]}}"#,
    )
    .unwrap();
    assert_eq!(status.status, OperationState::Failed);
    assert!(status.status.is_terminal());
    let error = status.error.unwrap();
    assert_eq!(
        error.code.as_deref(),
        Some("ManagedInstanceLinkConnectivityIsNotEstablished")
    );
    assert_eq!(error.details[0].code.as_deref(), Some("Inner"));
    assert_eq!(
        error.additional_info[0].kind.as_deref(),
        Some("PolicyViolation")
    );
    for (text, state, terminal) in [
        ("InProgress", OperationState::InProgress, false),
        ("Succeeded", OperationState::Succeeded, true),
        ("Canceled", OperationState::Canceled, true),
        ("Deleting", OperationState::Other("Deleting".into()), false),
    ] {
        let s: OperationStatus =
            serde_json::from_value(serde_json::json!({ "status": text })).unwrap();
        assert_eq!(s.status, state);
        assert_eq!(s.status.is_terminal(), terminal);
    }
    let envelope: ErrorResponse = serde_json::from_str(
        r#"{"error":{"code":"ResourceNotFound","message":"gone","target":"dag"}}"#,
    )
    .unwrap();
    assert_eq!(envelope.error.unwrap().target.as_deref(), Some("dag"));
    let db: Page<ManagedDatabase> = serde_json::from_str(
        r#"{"value":[{"name":"ToyStore","properties":{"status":"Online","collation":"x"}}],
            "nextLink":"https://next"}"#,
    )
    .unwrap();
    assert_eq!(db.value[0].properties.status.as_deref(), Some("Online"));
    assert_eq!(db.next_link.as_deref(), Some("https://next"));
}
