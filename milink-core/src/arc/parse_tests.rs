//! (d) Malformed and hostile answers are typed errors from [`parse`] and [`answer`], never
//! panics: cut short, not JSON, fields of the wrong type, nested too deep, too large, rows of
//! the wrong width, statuses an operation does not answer with.

use proptest::prelude::*;
use serde_json::json;

use super::examples_tests::{example, example_names, op_for};
use super::models::*;
use super::*;

fn bytes(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

fn instance_body() -> serde_json::Value {
    example("GetSqlServerInstance")["responses"]["200"]["body"].clone()
}

/// Every example's 200 body, with the operation that answers with it.
fn bodies() -> Vec<(ArcOp, Vec<u8>)> {
    example_names()
        .filter_map(|name| {
            let body = example(name)["responses"]["200"].get("body").cloned()?;
            Some((op_for(name), bytes(&body)))
        })
        .collect()
}

#[test]
fn every_cut_of_every_answer_is_truncated() {
    let mut cuts = 0;
    for (op, body) in bodies() {
        for at in 0..body.len() {
            match answer(&op, 200, &body[..at]) {
                Err(ArcParseError::Truncated { .. }) => cuts += 1,
                other => panic!("{} cut at {at}: {other:?}", op.operation_id()),
            }
        }
    }
    assert!(cuts > 10_000, "{cuts}");
}

#[test]
fn wrong_types_are_shape_errors_that_say_where() {
    let cases: Vec<(&str, serde_json::Value)> = vec![
        ("isHadrEnabled", json!("yes")),
        ("traceFlags", json!(["1800"])),
        ("traceFlags", json!([4_294_967_296_u64])),
        ("traceFlags", json!(1800)),
        ("dbMasterKeyExists", json!(1)),
        ("version", json!(2022)),
        ("databaseMirroringEndpoint", json!([])),
        // An array is not read as a struct's fields by position.
        ("databaseMirroringEndpoint", json!(["e", "PARTNER", true])),
        ("migration", json!({"assessment": []})),
        (
            "migration",
            json!({"assessment": {"serverAssessments": [["AzureSqlManagedInstance"]]}}),
        ),
        (
            "migration",
            json!({"assessment": {"serverAssessments": {"a": 1}}}),
        ),
        (
            "migration",
            json!({"assessment": {"skuRecommendationResults": {"azureSqlManagedInstance": {"targetSku": {"computeSize": "2"}}}}}),
        ),
    ];
    for (field, value) in cases {
        let mut body = instance_body();
        body["properties"][field] = value.clone();
        match parse::<SqlServerInstance>(&bytes(&body)) {
            Err(ArcParseError::Shape {
                what,
                line,
                column,
                message,
            }) => {
                assert_eq!(what, "sqlServerInstance");
                assert_eq!(line, 1);
                assert!(column > 1, "{field}");
                assert!(!message.contains(" at line "), "{message}");
            }
            other => panic!("{field} = {value}: {other:?}"),
        }
    }
    // The document itself of the wrong type.
    for body in [
        "null",
        "[]",
        " [null, null, null, null]",
        "\"instance\"",
        "42",
        "{\"properties\": []}",
        "{\"properties\": [null]}",
    ] {
        assert!(
            matches!(
                parse::<SqlServerInstance>(body.as_bytes()),
                Err(ArcParseError::Shape { .. })
            ),
            "{body}"
        );
    }
    // Telemetry: required columns and rows, string cells, one per column.
    for (body, shape) in [
        (json!({"rows": []}), true),
        (json!({"columns": []}), true),
        (json!({"columns": [{"name": "a"}], "rows": [[1]]}), true),
        (json!({"columns": [{"name": "a"}], "rows": ["a"]}), true),
        (json!({"columns": {"name": "a"}, "rows": []}), true),
        (
            json!({"columns": [{"name": "a"}], "rows": [["x", "y"]]}),
            false,
        ),
    ] {
        let read = parse::<TelemetryTable>(&bytes(&body));
        if shape {
            assert!(
                matches!(read, Err(ArcParseError::Shape { .. })),
                "{body}: {read:?}"
            );
        } else {
            assert_eq!(
                read,
                Err(ArcParseError::RowWidth {
                    row: 0,
                    cells: 2,
                    columns: 1
                })
            );
        }
    }
    // MI link checks and the operation status.
    assert!(matches!(
        parse::<MiLinkAssessmentResult>(br#"{"assessments": {"name": "AlwaysOn"}}"#),
        Err(ArcParseError::Shape { .. })
    ));
    assert!(matches!(
        parse::<MiLinkAssessmentResult>(br#"{"assessments": [{"failingDbs": "testdb2"}]}"#),
        Err(ArcParseError::Shape { .. })
    ));
    assert!(matches!(
        parse::<OperationStatus>(br#"{"name": "op"}"#),
        Err(ArcParseError::Shape { .. })
    ));
}

#[test]
fn what_is_not_json_is_told_apart_from_what_is_cut_short() {
    for body in [
        &b"<html><body>Bad Gateway</body></html>"[..],
        b"{'properties': {}}",
        b"{\"properties\": {}} trailing",
        b"\xff\xfe{}",
        b"{\"properties\": {\"collation\": \"\\uZZZZ\"}}",
    ] {
        assert!(
            matches!(
                parse::<SqlServerInstance>(body),
                Err(ArcParseError::NotJson { .. })
            ),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
    for body in [
        &b""[..],
        b"   ",
        b"{",
        b"{\"properties\": {\"traceFlags\": [1800,",
    ] {
        assert!(
            matches!(
                parse::<SqlServerInstance>(body),
                Err(ArcParseError::Truncated { .. })
            ),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn deep_nesting_and_huge_bodies_are_refused_without_exhausting_the_stack() {
    let depth = 100_000;
    let deep = format!(
        "{{\"unknown\": {}{}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    // An unknown field is skipped without recursion; a typed one stops at serde's limit.
    assert!(parse::<SqlServerInstance>(deep.as_bytes()).is_ok());
    let deep = format!("{{\"properties\": {{\"traceFlags\": {}", "[".repeat(depth));
    assert!(parse::<SqlServerInstance>(deep.as_bytes()).is_err());
    let huge = vec![b' '; MAX_ANSWER + 1];
    assert_eq!(
        parse::<TelemetryTable>(&huge),
        Err(ArcParseError::TooLarge {
            len: MAX_ANSWER + 1,
            max: MAX_ANSWER
        })
    );
}

#[test]
fn what_an_error_keeps_of_a_hostile_body_is_short_and_printable() {
    let hostile = format!("\u{7}\u{1b}[31m{}", "x".repeat(10_000));
    let body = bytes(&json!({"properties": {"isHadrEnabled": hostile}}));
    let Err(e) = parse::<SqlServerInstance>(&body) else {
        panic!("a string is not a boolean");
    };
    let text = e.to_string();
    assert!(text.chars().count() < 400, "{}", text.len());
    assert!(!text.chars().any(char::is_control), "{text:?}");
}

#[test]
fn nulls_unknown_fields_and_unknown_values_are_read_leniently() {
    let i: SqlServerInstance = parse(br#"{"properties": null, "etag": "x"}"#).unwrap();
    assert_eq!(i.properties, SqlServerInstanceProperties::default());
    let i: SqlServerInstance = parse(
        br#"{"properties": {"traceFlags": null, "version": "SQL Server 2030", "edition": "Enterprise",
            "migration": {"assessment": {"serverAssessments": null, "newField": {"a": [1]}}},
            "patchLevel": "16.0.4125.3", "futureFlag": true}}"#,
    )
    .unwrap();
    let p = &i.properties;
    assert!(p.trace_flags.is_empty());
    assert_eq!(
        p.version,
        Some(ArcSqlVersion::Other("SQL Server 2030".into()))
    );
    assert_eq!(p.edition, Some(ArcSqlEdition::Enterprise));
    assert_eq!(
        p.build(),
        Some(crate::names::SqlVersion::new(16, 0, 4125, 3))
    );
    assert!(
        p.migration
            .as_ref()
            .unwrap()
            .assessment
            .as_ref()
            .unwrap()
            .server_assessments
            .is_empty()
    );
    let r: MiLinkAssessmentResult = parse(
        br#"{"assessments": [{"name": "NewCheck", "category": "Quantum", "status": "Skipped", "failingDbs": null}]}"#,
    )
    .unwrap();
    assert_eq!(
        r.assessments[0].category,
        Some(MiLinkAssessmentCategory::Other("Quantum".into()))
    );
    // A status milink does not know is not a pass.
    assert!(!r.passed());
    assert_eq!(r.failures().count(), 0);
    let ag: SqlServerAvailabilityGroup =
        parse(br#"{"properties": {"replicas": null, "databases": {"value": null}}}"#).unwrap();
    assert!(ag.properties.replicas.value.is_empty());
    assert!(ag.primary_replica().is_none());
    let t: TelemetryTable =
        parse(br#"{"columns": [{"name": "lag", "type": "decimal"}], "rows": [[null], ["5"]]}"#)
            .unwrap();
    assert_eq!(
        t.columns[0].kind,
        Some(TelemetryColumnType::Other("decimal".into()))
    );
    assert_eq!(t.cells("lag").collect::<Vec<_>>(), vec![None, Some("5")]);
    let s: OperationStatus = parse(br#"{"status": "RunningAssessmentForMiLink"}"#).unwrap();
    assert!(!s.status.is_terminal());
}

#[test]
fn statuses_an_operation_does_not_answer_with_are_errors() {
    let delete = op_for("DeleteMiLink");
    assert_eq!(
        answer(&delete, 200, b"{}"),
        Err(ArcParseError::UnexpectedStatus {
            operation: "SqlServerAvailabilityGroups_deleteMiLink",
            status: 200
        })
    );
    assert_eq!(answer(&delete, 202, b"not json"), Ok(ArcAnswer::Accepted));
    for op in [ArcOp::GetInstance, ArcOp::RunMigrationAssessment] {
        assert!(matches!(
            answer(&op, 202, b""),
            Err(ArcParseError::UnexpectedStatus { status: 202, .. })
        ));
    }
    for status in [201, 204, 400, 404, 409, 500] {
        for name in example_names() {
            assert!(
                matches!(
                    answer(&op_for(name), status, b"{}"),
                    Err(ArcParseError::UnexpectedStatus { .. })
                ),
                "{name} {status}"
            );
        }
    }
    let list = answer(
        &ArcOp::ListAvailabilityGroups,
        200,
        br#"{"value": [{"name": "ag1"}], "nextLink": "https://next"}"#,
    )
    .unwrap();
    let ArcAnswer::AvailabilityGroups(page) = list else {
        panic!("{list:?}");
    };
    assert_eq!(page.value[0].name.as_deref(), Some("ag1"));
    assert_eq!(page.next_link.as_deref(), Some("https://next"));
    for body in [
        &br#"{"value": {}}"#[..],
        br#"{"value": [[null, null, null, null]]}"#,
        br#"{"value": [{"properties": {"replicas": {"value": [["r"]]}}}]}"#,
        br#"{"value": [{"properties": {"info": [true]}}]}"#,
    ] {
        assert!(
            matches!(
                answer(&ArcOp::ListAvailabilityGroups, 200, body),
                Err(ArcParseError::Shape { .. })
            ),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any bytes, for any operation and status: an answer or a typed error.
    #[test]
    fn any_bytes_are_an_answer_or_an_error(body in proptest::collection::vec(any::<u8>(), 0..512), status in prop_oneof![Just(200u16), Just(202u16), 100u16..600]) {
        for name in example_names() {
            let _ = answer(&op_for(name), status, &body);
        }
    }

    /// Any edit of one byte of a real answer: an answer or a typed error.
    #[test]
    fn a_corrupted_answer_is_an_answer_or_an_error(index in any::<prop::sample::Index>(), byte in any::<u8>()) {
        for (op, mut body) in bodies() {
            let at = index.index(body.len());
            body[at] = byte;
            let _ = answer(&op, 200, &body);
        }
    }
}
