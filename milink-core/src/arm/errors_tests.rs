//! Typed ARM errors: every status and body shape milink may meet, none panics.

use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::arm::models::OperationState;
use crate::arm::request;
use crate::lifecycle::{ArmFailoverType, InstanceOp, RoleChangeType, Side};
use crate::names::{InstanceId, LinkName};

fn instance() -> InstanceId {
    InstanceId::from_parts("sub", "rg", "tailspin-mi").unwrap()
}

fn link() -> LinkName {
    LinkName::new("DAG_ToyStore").unwrap()
}

fn link_properties() -> crate::lifecycle::LinkProperties {
    use crate::lifecycle::{FailoverMode, SeedingMode};
    use crate::names::{AgName, DatabaseName, LinkMode};
    crate::lifecycle::LinkProperties {
        instance_link_role: Side::SqlServer,
        instance_ag: AgName::new("AG_ToyStore_MI").unwrap(),
        partner_ag: AgName::new("AG_ToyStore").unwrap(),
        partner_endpoint: "TCP://10.0.1.4:5022".into(),
        failover_mode: FailoverMode::Manual,
        seeding_mode: SeedingMode::Automatic,
        link_mode: LinkMode::SingleDatabase,
        databases: vec![DatabaseName::new("ToyStore").unwrap()],
    }
}

fn failover() -> ArmRequest {
    request(
        &InstanceOp::Failover {
            link: link(),
            failover_type: ArmFailoverType::Planned,
        },
        &instance(),
    )
}

fn envelope(code: &str, message: &str) -> Vec<u8> {
    json!({"error": {"code": code, "message": message}})
        .to_string()
        .into_bytes()
}

const IDS: [(&str, &str); 2] = [
    ("x-ms-request-id", "11111111-2222-3333-4444-555555555555"),
    (
        "X-MS-Correlation-Request-Id",
        "66666666-7777-8888-9999-000000000000",
    ),
];

#[test]
fn every_link_409_is_permanent_with_its_cause_and_fix() {
    for (code, fix) in LINK_409 {
        let e = response_error(&failover(), 409, IDS, &envelope(code, "refused"));
        assert_eq!(e.code(), format!("arm:409:{code}"));
        assert!(!e.transient, "{code}");
        assert!(!e.is_busy(), "{code}");
        assert!(e.message.contains(fix), "{code}: {}", e.message);
        assert!(e.message.contains("refused"));
        assert!(e.message.contains("11111111-2222-3333-4444-555555555555"));
        assert!(e.message.contains("66666666-7777-8888-9999-000000000000"));
        assert!(
            e.message.starts_with("POST /subscriptions/sub/"),
            "{}",
            e.message
        );
    }
    // operation_error keeps the same code and fix for a failed long-running operation.
    let status = OperationStatus {
        name: None,
        status: OperationState::Failed,
        error: Some(ErrorDetail {
            code: Some("DistributedAvailabilityGroupFailoverSecondariesNotSynchronizing".into()),
            message: Some("not synchronizing".into()),
            ..ErrorDetail::default()
        }),
        start_time: None,
        percent_complete: None,
    };
    let e = operation_error(&failover(), &status);
    assert_eq!(
        e.code(),
        "arm:409:DistributedAvailabilityGroupFailoverSecondariesNotSynchronizing"
    );
    assert!(e.message.contains("SYNCHRONIZING"), "{}", e.message);
    assert!(!e.transient);
}

#[test]
fn busy_409s_are_transient_with_retry_after_and_match_the_simulator() {
    for code in BUSY_409 {
        let e = response_error(
            &failover(),
            409,
            [("Retry-After", "30"), IDS[0]],
            &envelope(code, "busy"),
        );
        assert!(e.transient, "{code}");
        assert_eq!(e.retry_after, Some(Duration::from_secs(30)));
    }
    let real = response_error(
        &failover(),
        409,
        [("retry-after", "5")],
        &envelope("ManagedInstanceIsBusy", "x"),
    );
    assert_eq!(real.code(), "arm:409:ManagedInstanceIsBusy");
    assert!(real.is_busy());
    // The same code, transience and busy-ness as the simulator's errors.
    #[cfg(feature = "sim")]
    for (real, sim) in [
        (real, crate::sim::errors::arm_busy(Duration::from_secs(5))),
        (
            response_error(
                &failover(),
                429,
                [("Retry-After", "5")],
                &envelope("SubscriptionTooManyRequests", "x"),
            ),
            crate::sim::errors::arm_throttled(Duration::from_secs(5)),
        ),
        (
            response_error(&failover(), 503, [], &envelope("TooManyRequests", "x")),
            crate::sim::errors::arm_server_error(503),
        ),
    ] {
        assert_eq!(real.kind, sim.kind);
        assert_eq!(
            (real.transient, real.is_busy(), real.retry_after),
            (sim.transient, sim.is_busy(), sim.retry_after)
        );
    }
}

#[test]
fn throttling_timeouts_and_server_errors_are_transient() {
    for (status, code) in [
        (408, "RequestTimeout"),
        (429, "SubscriptionTooManyRequests"),
        (429, "RegionalCapacityPressureLowPriorityRequests"),
        (500, "GatewayInternalServerError"),
        (503, "TooManyRequests"),
        (504, "RequestTimeout"),
    ] {
        let e = response_error(
            &failover(),
            status,
            [("Retry-After", "17")],
            &envelope(code, "later"),
        );
        assert_eq!(e.code(), format!("arm:{status}:{code}"));
        assert!(e.transient, "{status}");
        assert_eq!(e.retry_after, Some(Duration::from_secs(17)));
        assert_eq!(e.is_throttled(), status == 429);
        assert!(e.message.contains("retried"), "{}", e.message);
    }
    // Without a body: http:<status>, still transient; a gateway's HTML is shown as text.
    let e = response_error(
        &failover(),
        502,
        [],
        b"<html><body>Bad Gateway</body></html>",
    );
    assert_eq!(e.code(), "http:502");
    assert!(e.transient);
    assert!(e.message.contains("Bad Gateway"));
    assert_eq!(e.retry_after, None);
    // Retry-After: seconds only, clamped; a date or garbage is ignored.
    assert_eq!(retry_after(" 120 "), Some(Duration::from_secs(120)));
    assert_eq!(retry_after("99999999999"), Some(MAX_RETRY_AFTER));
    assert_eq!(retry_after("Wed, 21 Oct 2026 07:28:00 GMT"), None);
    assert_eq!(retry_after("-1"), None);
    // Other 4xx are permanent.
    let e = response_error(&failover(), 404, [], &envelope("ResourceNotFound", "gone"));
    assert!(!e.transient);
    assert_eq!(e.code(), "arm:404:ResourceNotFound");
}

#[test]
fn unauthorized_and_forbidden_name_the_permission() {
    let put_link = request(
        &InstanceOp::PutLink {
            link: link(),
            properties: link_properties(),
        },
        &instance(),
    );
    let cases = [
        (
            put_link,
            "Microsoft.Sql/managedInstances/distributedAvailabilityGroups/write",
        ),
        (
            request(
                &InstanceOp::SetRole {
                    link: link(),
                    role: Side::ManagedInstance,
                    change: RoleChangeType::Forced,
                },
                &instance(),
            ),
            "Microsoft.Sql/managedInstances/distributedAvailabilityGroups/setRole/action",
        ),
        (
            failover(),
            "Microsoft.Sql/managedInstances/distributedAvailabilityGroups/failover/action",
        ),
        (
            request(&InstanceOp::DeleteLink { link: link() }, &instance()),
            "Microsoft.Sql/managedInstances/distributedAvailabilityGroups/delete",
        ),
        (
            request(&InstanceOp::GetEndpointCertificate, &instance()),
            "Microsoft.Sql/managedInstances/endpointCertificates/read",
        ),
        (
            request(
                &InstanceOp::PutServerTrustCertificate {
                    name: crate::names::CertificateName::new("Cert_A").unwrap(),
                    public_blob: vec![0x30],
                },
                &instance(),
            ),
            "Microsoft.Sql/managedInstances/serverTrustCertificates/write",
        ),
    ];
    for (req, permission) in cases {
        let e = response_error(
            &req,
            403,
            IDS,
            &envelope(
                "AuthorizationFailed",
                "The client does not have authorization",
            ),
        );
        assert_eq!(e.code(), "arm:403:AuthorizationFailed");
        assert!(!e.transient);
        assert!(e.message.contains(permission), "{}", e.message);
        assert!(e.message.contains("11111111-2222-3333-4444-555555555555"));
        let e = response_error(
            &req,
            401,
            [],
            &envelope("InvalidAuthenticationToken", "expired"),
        );
        assert_eq!(e.code(), "arm:401:InvalidAuthenticationToken");
        assert!(e.message.contains(permission), "{}", e.message);
        assert!(e.message.contains("x-ms-request-id: none"));
    }
    // Reads of the instance and its databases.
    let get = |path: &str| permission(Method::Get, path);
    assert_eq!(
        get("/subscriptions/s/resourceGroups/r/providers/Microsoft.Sql/managedInstances/mi"),
        "Microsoft.Sql/managedInstances/read"
    );
    assert_eq!(
        get(
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.Sql/managedInstances/mi/databases?x=1"
        ),
        "Microsoft.Sql/managedInstances/databases/read"
    );
    assert_eq!(get("/nonsense"), "Microsoft.Sql/managedInstances/read");
}

#[test]
fn odd_bodies_are_typed_and_cut() {
    // Malformed JSON, truncated JSON, wrong types, empty.
    for body in [
        &b"{not json"[..],
        br#"{"error": {"code": "ManagedInstanceIsBusy", "mess"#,
        br#"{"error": {"code": 409, "message": ["x"]}}"#,
        br#"{"error": "ManagedInstanceIsBusy"}"#,
        br#"[1, 2, 3]"#,
        b"",
        b"\xff\xfe\x00\x01",
    ] {
        let e = response_error(&failover(), 409, IDS, body);
        assert_eq!(e.code(), "http:409", "{:?}", String::from_utf8_lossy(body));
        assert!(!e.transient);
        assert!(!e.message.contains('\0'));
    }
    // A code that is no ARM code (spaces, colons, too long) is not kept as a code.
    for code in ["two words", "arm:409:x", &"A".repeat(200)] {
        let e = response_error(&failover(), 400, [], &envelope(code, "m"));
        assert_eq!(e.code(), "http:400");
    }
    // 10 MB: not parsed, at most MAX_BODY kept (plus the size).
    let mut huge = envelope("ManagedInstanceIsBusy", "x");
    huge.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
    let e = response_error(&failover(), 500, IDS, &huge);
    assert_eq!(e.code(), "http:500");
    assert!(e.transient);
    assert!(e.message.len() < MAX_BODY + 1024, "{}", e.message.len());
    assert!(e.message.contains(&format!("{} bytes in all", huge.len())));
    // A huge message inside a valid envelope is cut too, on a character boundary.
    let long = "é".repeat(100_000);
    let e = response_error(
        &failover(),
        409,
        [],
        &envelope("DistributedAvailabilityGroupSetRoleFailed", &long),
    );
    assert_eq!(
        e.code(),
        "arm:409:DistributedAvailabilityGroupSetRoleFailed"
    );
    assert!(e.message.len() < MAX_BODY + 1024);
    // Control characters and hostile header values are neutralised.
    let e = response_error(
        &failover(),
        400,
        [("x-ms-request-id", "abc\r\nSet-Cookie: x")],
        &envelope("InvalidParameterValue", "line\u{1b}[31m\nbreak"),
    );
    assert!(
        !e.message.contains('\n') && !e.message.contains('\r') && !e.message.contains('\u{1b}')
    );
    // Nested details and target are shown.
    let body = json!({"error": {"code": "InvalidRequest", "message": "bad", "target": "properties.databases",
        "details": [{"code": "Inner", "message": "why"}], "additionalInfo": [{"type": "t", "info": {}}]}});
    let e = response_error(&failover(), 400, [], body.to_string().as_bytes());
    assert!(
        e.message.contains("target 'properties.databases'") && e.message.contains("Inner: why"),
        "{}",
        e.message
    );
}

#[test]
fn canceled_operation_without_error_is_typed() {
    let status = OperationStatus {
        name: Some("op".into()),
        status: OperationState::Canceled,
        error: None,
        start_time: None,
        percent_complete: None,
    };
    let e = operation_error(&failover(), &status);
    assert_eq!(e.code(), "arm:409:OperationCancelled");
    assert!(e.message.contains("Canceled"));
    let failed = OperationStatus {
        status: OperationState::Failed,
        error: Some(ErrorDetail {
            code: Some("ManagedInstanceLinkSourceDbHasFilestream".into()),
            ..ErrorDetail::default()
        }),
        ..status
    };
    // As the simulator reports it: 400 from the catalogue.
    assert_eq!(
        operation_error(&failover(), &failed).code(),
        "arm:400:ManagedInstanceLinkSourceDbHasFilestream"
    );
}

proptest! {
    #[test]
    fn any_body_and_status_is_typed(
        status in 100u16..1000,
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        retry in ".{0,12}",
    ) {
        let e = response_error(&failover(), status, [("Retry-After", retry.as_str())], &body);
        prop_assert_eq!(e.kind.http_status(), Some(status));
        prop_assert!(e.message.len() < MAX_BODY + 1024);
        prop_assert_eq!(PortErrorKind::parse(&e.code()), e.kind.clone());
    }

    #[test]
    fn any_envelope_code_and_message_is_typed(code in ".{0,40}", message in ".{0,200}", status in 400u16..600) {
        let e = response_error(&failover(), status, [], &envelope(&code, &message));
        prop_assert_eq!(PortErrorKind::parse(&e.code()), e.kind.clone());
        prop_assert_eq!(e.transient, matches!(status, 408 | 429 | 500..=599) || (status == 409 && BUSY_409.contains(&code.as_str())));
    }
}
