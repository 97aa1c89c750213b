//! The fuzz targets' properties (`properties/mod.rs`, shared with `fuzz/`) as property tests, so
//! they run on stable in every test run: quoting, `Lsn` and version parsing, connection strings
//! and redirects, the ARM and Arc models, and journal files.

mod properties;

use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::Value;

use properties::RedirectCase;

/// Arbitrary Unicode, biased toward the characters and sequences that break quoting and
/// connection string parsing.
fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => any::<char>().prop_map(String::from),
        2 => prop::sample::select(vec![
            "]", "]]", "[", "'", "''", "\"", "--", "/*", "*/", ";", "N'", "0x", "\t", "\r\n", "\n",
            " ", "=", "==", "\u{1b}", "\u{7f}", "\u{85}", "\u{a0}", "\u{2028}", "\u{200b}", "😀",
            "é", "Password", "pwd", "Server", "Data Source", "tcp:", ",1433", "\\INST", "Trusted_Connection",
            "User ID", "Authentication", "Failover Partner",
        ])
        .prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

/// Text shaped like a connection string: `key=value` pairs with quoting, synonyms and noise.
fn connection_text() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "Server",
            "server",
            "Data Source",
            "addr",
            "Database",
            "Initial Catalog",
            "UID",
            "User ID",
            "Password",
            "PWD",
            "Trusted_Connection",
            "Integrated Security",
            "Authentication",
            "Failover Partner",
            "ServerSPN",
            "HostNameInCertificate",
            "Network Library",
            "App",
            "Encrypt",
            "ClientSecret",
            "X-Custom",
            "a==b",
            "Server ",
        ])
        .prop_map(String::from),
        hostile(),
    ];
    let value = prop_oneof![
        prop::sample::select(vec![
            "",
            "tcp:sql01,1433",
            "sql01\\INST",
            "True",
            "yes",
            "sspi",
            "x",
            " padded ",
            "=x",
            "'q'",
            "\"d\"",
            "a'b",
            "a\"b",
            "'a''b'",
            "\"a\"\"b\"",
            "semi;colon",
        ])
        .prop_map(String::from),
        hostile(),
    ];
    let separator = prop::sample::select(vec![";", ";;", " ; ", "; "]);
    prop::collection::vec(
        (
            key,
            prop::sample::select(vec!["=", " = ", "= "]),
            value,
            separator,
        ),
        0..6,
    )
    .prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, eq, v, sep)| format!("{k}{eq}{v}{sep}"))
            .collect()
    })
}

fn redirect_case() -> impl Strategy<Value = RedirectCase> {
    (
        connection_text(),
        any::<u8>(),
        hostile(),
        hostile(),
        any::<u8>(),
        prop_oneof![Just(String::new()), hostile()],
        any::<u8>(),
        any::<u16>(),
    )
        .prop_map(
            |(text, secret_key, password, other_password, auth, user, endpoint, port)| {
                RedirectCase {
                    text,
                    secret_key,
                    password,
                    other_password,
                    auth,
                    user,
                    endpoint,
                    port,
                }
            },
        )
}

/// The response bodies of the ARM and Arc examples the crate ships, with the kinds that read
/// them.
fn examples() -> &'static [Value] {
    static EXAMPLES: OnceLock<Vec<Value>> = OnceLock::new();
    EXAMPLES.get_or_init(|| {
        let mut bodies = Vec::new();
        for root in ["src/arm/testdata", "src/arc/testdata"] {
            collect_examples(
                &Path::new(env!("CARGO_MANIFEST_DIR")).join(root),
                &mut bodies,
            );
        }
        assert!(bodies.len() > 20, "the examples are found");
        bodies
    })
}

fn collect_examples(dir: &Path, bodies: &mut Vec<Value>) {
    for entry in std::fs::read_dir(dir)
        .expect("reads the examples")
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            collect_examples(&path, bodies);
        } else if path.parent().is_some_and(|p| p.ends_with("examples"))
            && path.extension().is_some_and(|e| e == "json")
        {
            let text = std::fs::read(&path).expect("reads an example");
            let example: Value = serde_json::from_slice(&text).expect("an example is JSON");
            if let Some(responses) = example.get("responses").and_then(Value::as_object) {
                bodies.extend(responses.values().filter_map(|r| r.get("body").cloned()));
            }
        }
    }
}

/// A JSON value with the field names and values the models read.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(vec![
            "Succeeded",
            "Failed",
            "InProgress",
            "Canceled",
            "PRIMARY",
            "SECONDARY",
            "Primary",
            "0x3082AB",
            "3082ab",
            "",
            "SQLServer2022",
            "AlwaysUpToDate",
            "Passive",
            "Sync",
            "Async",
            "71000009408100001",
            "16.0.4125.3",
            "Other",
        ])
        .prop_map(Value::from),
        hostile().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        let key = prop::sample::select(vec![
            "id",
            "name",
            "type",
            "location",
            "properties",
            "value",
            "nextLink",
            "status",
            "error",
            "code",
            "message",
            "details",
            "additionalInfo",
            "info",
            "percentComplete",
            "startTime",
            "sku",
            "tier",
            "capacity",
            "databases",
            "state",
            "provisioningState",
            "databaseFormat",
            "publicKey",
            "certificateName",
            "thumbprint",
            "replicationMode",
            "failoverMode",
            "seedingMode",
            "lastHardenedLsn",
            "instanceRole",
            "linkMode",
            "columns",
            "rows",
            "version",
            "replicas",
            "role",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..6).prop_map(|fields| Value::Object(
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

/// Replaces the `index`-th node (pre-order, modulo the count) of `value` by `with`.
fn replace_node(value: &mut Value, index: usize, with: Value) {
    fn count(v: &Value) -> usize {
        1 + match v {
            Value::Array(items) => items.iter().map(count).sum(),
            Value::Object(fields) => fields.values().map(count).sum(),
            _ => 0,
        }
    }
    fn walk(v: &mut Value, index: &mut usize, with: &mut Option<Value>) {
        if *index == 0 {
            if let Some(w) = with.take() {
                *v = w;
            }
            return;
        }
        *index -= 1;
        match v {
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, index, with)),
            Value::Object(fields) => fields.values_mut().for_each(|f| walk(f, index, with)),
            _ => {}
        }
    }
    let mut index = index % count(value);
    walk(value, &mut index, &mut Some(with));
}

fn arm_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (any::<prop::sample::Index>(), any::<usize>(), json_value()).prop_map(
            |(pick, at, with)| {
                let mut body = pick.get(examples()).clone();
                replace_node(&mut body, at, with);
                serde_json::to_vec(&body).expect("JSON writes")
            }
        ),
        json_value().prop_map(|v| serde_json::to_vec(&v).expect("JSON writes")),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// The first records of the shipped journal fixture (schema version 1, without checksums).
fn fixture_lines() -> &'static [Vec<u8>] {
    static LINES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/journal-2026-12.jsonl");
        let text = std::fs::read(path).expect("reads the journal fixture");
        text.split(|b| *b == b'\n')
            .take(8)
            .map(<[u8]>::to_vec)
            .collect()
    })
}

#[derive(Debug, Clone)]
enum Damage {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    DropLine(usize),
    DuplicateLine(usize),
    None,
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<usize>().prop_map(Damage::Truncate),
        (any::<usize>(), 1u8..=255).prop_map(|(at, bits)| Damage::Flip(at, bits)),
        (
            any::<usize>(),
            prop_oneof![
                prop::collection::vec(any::<u8>(), 1..8),
                prop::sample::select(vec![&b"\n"[..], b"\0\0", b"{", b"}\n", b"\"seq\":7,"])
                    .prop_map(<[u8]>::to_vec),
            ]
        )
            .prop_map(|(at, bytes)| Damage::Insert(at, bytes)),
        any::<usize>().prop_map(Damage::DropLine),
        any::<usize>().prop_map(Damage::DuplicateLine),
        Just(Damage::None),
    ]
}

fn apply(lines: &[Vec<u8>], damage: &Damage) -> Vec<u8> {
    let mut lines = lines.to_vec();
    match damage {
        Damage::DropLine(i) if !lines.is_empty() => {
            let i = i % lines.len();
            lines.remove(i);
        }
        Damage::DuplicateLine(i) if !lines.is_empty() => {
            let i = i % lines.len();
            lines.insert(i, lines[i].clone());
        }
        _ => {}
    }
    let mut bytes = lines.join(&b'\n');
    bytes.push(b'\n');
    match damage {
        Damage::Truncate(at) => bytes.truncate(at % (bytes.len() + 1)),
        Damage::Flip(at, bits) => {
            let at = at % bytes.len();
            bytes[at] ^= bits;
        }
        Damage::Insert(at, insert) => {
            let at = at % (bytes.len() + 1);
            bytes.splice(at..at, insert.iter().copied());
        }
        _ => {}
    }
    bytes
}

/// Journal files: the fixture's first records as written (version 1) or with checksums
/// (version 2), cut and damaged; and arbitrary bytes.
fn journal_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (1usize..=8, damage(), any::<bool>(), any::<bool>()).prop_map(
            |(n, damage, v2, sum_after)| {
                let lines: Vec<Vec<u8>> = fixture_lines()[..n]
                    .iter()
                    .map(|line| {
                        if v2 {
                            let text = String::from_utf8_lossy(line).replacen(
                                "{\"schema_version\":1,",
                                "{\"schema_version\":2,",
                                1,
                            );
                            properties::with_checksums(text.as_bytes())
                        } else {
                            line.clone()
                        }
                    })
                    .collect();
                let bytes = apply(&lines, &damage);
                if v2 && sum_after {
                    // Damage under a valid checksum reaches the record parser.
                    let stripped: Vec<u8> = String::from_utf8_lossy(&bytes)
                        .split('\n')
                        .map(|l| match l.rfind(",\"sum\":\"") {
                            Some(at) if l.len() == at + 27 => format!("{}}}", &l[..at]),
                            _ => l.to_owned(),
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                        .into_bytes();
                    properties::with_checksums(&stripped)
                } else {
                    bytes
                }
            }
        ),
        prop::collection::vec(any::<u8>(), 0..128),
        prop::collection::vec(
            prop::sample::select(vec![b'{', b'}', b'\n', b'\0', b'"', b'a', b':']),
            0..64
        ),
        hostile().prop_map(|s| format!("{{\"schema_version\":{s}").into_bytes()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn quoting_reads_back_as_one_token(value in hostile()) {
        properties::quoting(&value);
    }

    #[test]
    fn lsn_and_version_parse_what_they_display(
        text in prop_oneof![
            "[0-9]{1,27}",
            "[0-9]{1,26}\\.0",
            "[ 0-9.]{0,30}",
            "[0-9]{1,6}\\.[0-9]{1,6}\\.[0-9]{1,11}(\\.[0-9]{1,11})?",
            hostile(),
        ],
        number in prop_oneof![any::<u128>(), 0u128..=9_999_999_999_999_999_999_999_999],
        parts in any::<(u16, u16, u32, u32)>(),
    ) {
        properties::lsn_and_version(&text, number, parts);
    }

    #[test]
    fn connection_strings_parse_what_they_write(text in prop_oneof![connection_text(), hostile()]) {
        properties::connection_string(&text);
    }

    #[test]
    fn redirects_keep_keys_and_hide_passwords(case in redirect_case()) {
        properties::redirect(&case);
    }

    #[test]
    fn arm_models_read_what_they_write(kind in 0..properties::ARM_MODELS, body in arm_body()) {
        properties::arm_model(kind, &body);
    }

    #[test]
    fn journals_open_to_valid_records_or_a_typed_error(bytes in journal_bytes()) {
        let dir = tempfile::tempdir().expect("a temp dir");
        properties::journal(&bytes, dir.path());
    }
}

/// Findings of the fuzz targets, kept as regression cases.
mod regressions {
    use super::properties;

    #[test]
    fn the_shipped_fixture_opens_and_its_damaged_forms_do_not_panic() {
        let lines = super::fixture_lines();
        let mut bytes = lines.join(&b'\n');
        bytes.push(b'\n');
        let dir = tempfile::tempdir().expect("a temp dir");
        properties::journal(&bytes, dir.path());
        properties::journal(&bytes[..bytes.len() / 2], dir.path());
    }
}
