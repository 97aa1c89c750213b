//! The properties the fuzz targets (`fuzz/`) and the property tests (`tests/properties.rs`)
//! check, written once. Each check takes arbitrary input, returns quietly when the input is
//! refused with a typed error, and panics (with the input) when a property does not hold.
//!
//! - [`quoting`]: a quoted identifier, a `N'…'` literal and a `0x…` literal read back, through
//!   an independent tokenizer, as exactly one token equal to the input, and embedded in a
//!   statement they end where the quoting ends; validated names quote the same way.
//! - [`lsn_and_version`]: `Lsn` and `SqlVersion` parse what they display, and their JSON forms
//!   read back; every canonical decimal in range parses.
//! - [`connection_string`]: a parsed connection string emits text that parses back to the same
//!   pairs, and that text is stable; the redacted text parses with the same keys.
//! - [`redirect`]: a connection string derived for a redirect keeps every key it does not own
//!   exactly as many times as the user wrote it, with the same value, owns `Data Source` once and
//!   the authentication keys as chosen, parses back, and its `Debug`, `Display` and JSON do not
//!   depend on the password.
//! - [`arm_model`]: an ARM or Arc model that deserializes serializes to JSON that deserializes to
//!   the same value and the same JSON; Arc's typed errors keep no control characters.
//! - [`journal`]: arbitrary bytes in a file either open as a journal whose records re-validate
//!   and replay, or give a typed error; a failed open or repair leaves the file as it was, a
//!   repair removes only a torn last line, and a file that never was a journal is never cut.

// Each test binary and fuzz target uses its own part of this module.
#![allow(dead_code)]

pub mod tsql_lexer;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::Path;

use milink_core::journal::{self, JournalError, JournalRecord, RECORD_START};
use milink_core::lifecycle::{LinkSpec, Side};
use milink_core::names::{
    AgName, CertificateName, DatabaseName, EndpointHost, EndpointName, LinkName, Lsn, ServerName,
    SqlVersion, TcpPort,
};
use milink_core::ports::Journal;
use milink_core::redirect::connection_string::quote_value;
use milink_core::redirect::{
    ConnectionString, EndpointChoice, EntraAuth, Keyword, MiPorts, RedirectAuth, RedirectOptions,
    RedirectTarget,
};
use milink_core::tsql::{self, SqlIdentifier};
use milink_core::{FileJournal, Secret};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tsql_lexer::{Tok, tokenize};

// ---------------------------------------------------------------------------------------------
// Quoting

/// `value` quoted as an identifier, a Unicode literal and (its UTF-8 bytes) a binary literal
/// reads back as one token equal to it, also inside a statement; a validated name that accepts
/// `value` quotes it the same way.
pub fn quoting(value: &str) {
    let ident = tsql::quote_ident(value);
    assert_eq!(
        tokenize(&ident),
        Ok(vec![Tok::Bracketed(value.to_owned())]),
        "identifier {value:?} quoted as {ident:?}"
    );
    let literal = tsql::quote_nstring(value);
    assert_eq!(
        tokenize(&literal),
        Ok(vec![Tok::NString(value.to_owned())]),
        "literal {value:?} quoted as {literal:?}"
    );
    let binary = tsql::binary_literal(value.as_bytes());
    assert_eq!(
        tokenize(&binary),
        Ok(vec![Tok::Binary(value.as_bytes().to_vec())]),
        "binary literal of {value:?}: {binary:?}"
    );
    assert_eq!(binary.len(), 2 + 2 * value.len());
    assert!(
        binary[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    );
    // Inside a statement, the quoted forms end where their quoting ends: what follows them is
    // still read as the statement's own tokens.
    let statement = format!("ALTER DATABASE {ident} SET PARTNER = {literal}, {binary}; SELECT 1");
    assert_eq!(
        tokenize(&statement),
        Ok(vec![
            Tok::Word("ALTER".into()),
            Tok::Word("DATABASE".into()),
            Tok::Bracketed(value.to_owned()),
            Tok::Word("SET".into()),
            Tok::Word("PARTNER".into()),
            Tok::Punct('='),
            Tok::NString(value.to_owned()),
            Tok::Punct(','),
            Tok::Binary(value.as_bytes().to_vec()),
            Tok::Punct(';'),
            Tok::Word("SELECT".into()),
            Tok::Number("1".into()),
        ]),
        "statement {statement:?}"
    );
    names_quote(value);
}

fn names_quote(value: &str) {
    fn check<
        N: SqlIdentifier + std::fmt::Display + Serialize + DeserializeOwned + PartialEq + Debug,
    >(
        value: &str,
        name: Result<N, milink_core::names::NameError>,
    ) {
        let Ok(name) = name else { return };
        assert_eq!(name.ident(), value);
        assert_eq!(name.to_string(), value);
        assert_eq!(name.quoted(), tsql::quote_ident(value));
        assert_eq!(name.literal(), tsql::quote_nstring(value));
        let json = serde_json::to_string(&name).expect("a name serializes");
        let back: N = serde_json::from_str(&json).expect("a name reads back");
        assert_eq!(back, name);
    }
    check(value, DatabaseName::new(value));
    check(value, AgName::new(value));
    check(value, LinkName::new(value));
    check(value, CertificateName::new(value));
    check(value, EndpointName::new(value));
    check(value, ServerName::new(value));
}

// ---------------------------------------------------------------------------------------------
// Lsn and SqlVersion

/// `text` read as an `Lsn` and a `SqlVersion`, `number` as an `Lsn`, `parts` as a version.
pub fn lsn_and_version(text: &str, number: u128, parts: (u16, u16, u32, u32)) {
    // Lsn from text: what parses displays canonically and parses back.
    if let Ok(lsn) = Lsn::parse(text) {
        assert!(lsn <= Lsn::MAX, "{text:?} parsed beyond numeric(25,0)");
        let shown = lsn.to_string();
        assert_eq!(Lsn::parse(&shown), Ok(lsn), "{text:?} shown as {shown:?}");
        assert!(shown == "0" || !shown.starts_with('0'), "{shown:?}");
        json_round_trip(&lsn);
        // The digits it was read from give the same number.
        let trimmed = text.trim();
        let digits = trimmed.strip_suffix(".0").unwrap_or(trimmed);
        assert_eq!(digits.parse::<u128>().ok(), Some(lsn.value()), "{text:?}");
    }
    // Every canonical decimal of numeric(25,0) parses, as itself and with the DMV's `.0`.
    if !text.is_empty() && text.len() <= 25 && text.bytes().all(|b| b.is_ascii_digit()) {
        let n: u128 = text.parse().expect("at most 25 digits fit u128");
        let lsn = Lsn::parse(text).unwrap_or_else(|e| panic!("{text:?} refused: {e}"));
        assert_eq!(lsn.value(), n);
        assert_eq!(Lsn::parse(&format!(" {text}.0 ")), Ok(lsn));
    }
    // Lsn from a number.
    match Lsn::new(number) {
        Ok(lsn) => {
            assert!(number <= Lsn::MAX.value());
            assert_eq!(lsn.value(), number);
            assert_eq!(Lsn::parse(&lsn.to_string()), Ok(lsn));
            assert_eq!(lsn.cmp(&Lsn::MAX), number.cmp(&Lsn::MAX.value()));
            json_round_trip(&lsn);
            if let Ok(small) = u64::try_from(number) {
                let from_number: Lsn =
                    serde_json::from_str(&small.to_string()).expect("a JSON number");
                assert_eq!(from_number, lsn);
            }
        }
        Err(_) => assert!(number > Lsn::MAX.value()),
    }
    // Lsn from any JSON text.
    if let Ok(lsn) = serde_json::from_str::<Lsn>(text) {
        assert!(lsn <= Lsn::MAX, "JSON {text:?} read beyond numeric(25,0)");
        json_round_trip(&lsn);
    }
    // SqlVersion from text.
    if let Ok(version) = SqlVersion::parse(text) {
        let shown = version.to_string();
        assert_eq!(
            SqlVersion::parse(&shown),
            Ok(version),
            "{text:?} shown as {shown:?}"
        );
        json_round_trip(&version);
        let _ = (version.release_name(), version.capabilities());
    }
    // SqlVersion from parts: displays as `a.b.c.d`, parses back, orders as the tuple.
    let (major, minor, build, revision) = parts;
    let version = SqlVersion::new(major, minor, build, revision);
    let shown = version.to_string();
    assert_eq!(shown, format!("{major}.{minor}.{build}.{revision}"));
    assert_eq!(SqlVersion::parse(&shown), Ok(version));
    if revision == 0 {
        assert_eq!(
            SqlVersion::parse(&format!("{major}.{minor}.{build}")),
            Ok(version)
        );
    }
    let other = SqlVersion::new(16, 0, 4125, 3);
    assert_eq!(version.cmp(&other), parts.cmp(&(16, 0, 4125, 3)));
    json_round_trip(&version);
    let caps = version.capabilities();
    if caps.link_supported {
        assert!(caps.minimum_build.is_some_and(|min| version >= min));
    }
}

/// JSON of `value` reads back to it, and writes the same JSON again.
fn json_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let json = serde_json::to_string(value).expect("serializes");
    let back: T = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json} reads back: {e}"));
    assert_eq!(&back, value, "{json}");
    assert_eq!(serde_json::to_string(&back).expect("serializes"), json);
}

// ---------------------------------------------------------------------------------------------
// Connection strings and redirects

fn keys(cs: &ConnectionString) -> Vec<String> {
    cs.keys().map(str::to_owned).collect()
}

/// What SqlClient compares a key by: its keyword, else its text without trailing whitespace,
/// ignoring case.
fn key_id(key: &str) -> String {
    match Keyword::lookup(key) {
        Some(keyword) => keyword.canonical().to_owned(),
        None => key.trim_end().to_lowercase(),
    }
}

fn key_counts(cs: &ConnectionString) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for key in cs.keys() {
        *counts.entry(key_id(key)).or_insert(0) += 1;
    }
    counts
}

/// A parsed connection string writes text that parses back to it, and that text is stable.
pub fn connection_string(text: &str) {
    let Ok(cs) = ConnectionString::parse(text) else {
        return;
    };
    let written = cs.expose();
    let back = ConnectionString::parse(&written)
        .unwrap_or_else(|e| panic!("{text:?} written as {written:?} does not parse: {e}"));
    assert_eq!(keys(&back), keys(&cs), "{text:?} written as {written:?}");
    assert_eq!(back, cs, "{text:?} written as {written:?}");
    assert_eq!(back.expose(), written, "{text:?}");
    let redacted = cs.redacted();
    let shown = ConnectionString::parse(&redacted)
        .unwrap_or_else(|e| panic!("{text:?} redacted as {redacted:?} does not parse: {e}"));
    assert_eq!(keys(&shown), keys(&cs), "{text:?} redacted as {redacted:?}");
    assert_eq!(format!("{cs}"), redacted);
    // Every value that is not secret reads the same after the round trip.
    for key in cs.keys() {
        assert_eq!(back.get(key), cs.get(key), "{key:?} of {text:?}");
    }
}

/// The keys a password is written under in [`RedirectCase`]: SqlClient's and other drivers'.
pub const SECRET_KEYS: &[&str] = &[
    "Password",
    "PWD",
    "pwd",
    "password",
    "ClientSecret",
    "Access Token",
    "Db Password",
];

/// One redirect to check: the user's string (`text` with a password appended under
/// `SECRET_KEYS[secret_key]`), computed twice with two different passwords.
#[derive(Debug, Clone)]
pub struct RedirectCase {
    /// The connection string without its password.
    pub text: String,
    /// Index into [`SECRET_KEYS`] (taken modulo its length).
    pub secret_key: u8,
    /// The password of the first computation (in the string and in the chosen authentication).
    pub password: String,
    /// The password of the second.
    pub other_password: String,
    /// The authentication (modulo 7): keep, SQL, Entra default, Entra password, service
    /// principal, managed identity, integrated.
    pub auth: u8,
    /// The user, client id or login hint of the chosen authentication.
    pub user: String,
    /// The endpoint (modulo 3): VNet-local, public, custom.
    pub endpoint: u8,
    /// The custom endpoint's port.
    pub port: u16,
}

/// The spec of the link the redirect targets are computed for.
pub fn spec() -> LinkSpec {
    serde_json::from_str(SPEC).expect("the test spec reads")
}

const SPEC: &str = r#"{"link":"DAG_ToyStore","mode":"SingleDatabase","databases":["ToyStore"],"initial_primary":"SqlServer","failover_mode":"Manual","seeding_mode":"Automatic","source":{"server":"TailspinSql","version":"16.0.4115.5","endpoint_host":"10.0.1.4","endpoint_port":5022,"endpoint_name":"database_mirroring_endpoint","certificate":"Cert_TailspinSql_endpoint","certificate_expiry":"2027-11-26","ag":"AG_ToyStore"},"target":{"instance":"/subscriptions/5f1c6a2e-8d3b-4c7a-9e10-3b2d4f6a8c01/resourceGroups/rg-tailspin/providers/Microsoft.Sql/managedInstances/tailspin-mi","fqdn":"tailspin-mi.abc123def456.database.windows.net","ag":"AG_ToyStore_MI","update_policy":"SQLServer2022"},"session_timeout_s":20,"options":{"probe_interval":{"secs":5,"nanos":0},"stability_window":{"secs":30,"nanos":0},"join_timeout":{"secs":900,"nanos":0},"seeding_timeout":{"secs":518400,"nanos":0},"catch_up_timeout":{"secs":900,"nanos":0},"failover_timeout":{"secs":900,"nanos":0},"first_backup_timeout":{"secs":86400,"nanos":0},"step_timeout":{"secs":600,"nanos":0}}}"#;

/// Keys a derived string removes because they are bound to the SQL Server host.
const HOST_BOUND: &[Keyword] = &[
    Keyword::FailoverPartner,
    Keyword::FailoverPartnerSpn,
    Keyword::ServerSpn,
    Keyword::HostNameInCertificate,
    Keyword::ServerCertificate,
    Keyword::NetworkLibrary,
];

/// The authentication keys a choice other than `Keep` replaces.
const AUTH: &[Keyword] = &[
    Keyword::IntegratedSecurity,
    Keyword::UserId,
    Keyword::Password,
    Keyword::Authentication,
];

fn auth(case: &RedirectCase, password: &str) -> RedirectAuth {
    let user = case.user.clone();
    let some_user = (!user.is_empty()).then(|| user.clone());
    match case.auth % 7 {
        0 => RedirectAuth::Keep,
        1 => RedirectAuth::SqlPassword {
            user,
            password: Secret::new(password),
        },
        2 => RedirectAuth::Entra(EntraAuth::Default {
            client_id: some_user,
        }),
        3 => RedirectAuth::Entra(EntraAuth::Password {
            user,
            password: Secret::new(password),
        }),
        4 => RedirectAuth::Entra(EntraAuth::ServicePrincipal {
            client_id: user,
            secret: Secret::new(password),
        }),
        5 => RedirectAuth::Entra(EntraAuth::ManagedIdentity {
            client_id: some_user,
        }),
        _ => RedirectAuth::Entra(EntraAuth::Integrated),
    }
}

/// The redirect properties for `case` (see the module's documentation).
pub fn redirect(case: &RedirectCase) {
    if case.password == case.other_password
        || case.password.contains('\0')
        || case.other_password.contains('\0')
    {
        return;
    }
    let Ok(base) = ConnectionString::parse(&case.text) else {
        return;
    };
    let key = SECRET_KEYS[usize::from(case.secret_key) % SECRET_KEYS.len()];
    // A string that parses, followed by one more pair, parses to its pairs and that pair.
    let with_password = |password: &str| {
        let text = format!("{};{key}={}", case.text, quote_value(password));
        let cs = ConnectionString::parse(&text)
            .unwrap_or_else(|e| panic!("{:?} plus a password does not parse: {e}", case.text));
        let mut expected = keys(&base);
        expected.push(key.to_owned());
        assert_eq!(keys(&cs), expected, "{:?}", case.text);
        assert_eq!(
            cs.secret(key).map(|s| s.expose().to_owned()),
            Some(password.to_owned())
        );
        cs
    };
    let original_a = with_password(&case.password);
    let original_b = with_password(&case.other_password);
    let options = |original: ConnectionString, password: &str| RedirectOptions {
        original,
        endpoint: match case.endpoint % 3 {
            0 => EndpointChoice::VnetLocal,
            1 => EndpointChoice::Public,
            _ => EndpointChoice::Custom {
                host: EndpointHost::new("10.20.30.40").expect("an IP address"),
                port: TcpPort::new(case.port.max(1)).expect("a port above 0"),
            },
        },
        ports: MiPorts::default(),
        auth: auth(case, password),
    };
    let options_a = options(original_a.clone(), &case.password);
    let options_b = options(original_b, &case.other_password);
    assert_eq!(format!("{options_a:?}"), format!("{options_b:?}"));
    let spec = spec();
    for side in [Side::ManagedInstance, Side::SqlServer] {
        let a = RedirectTarget::for_primary(&spec, side, &options_a);
        let b = RedirectTarget::for_primary(&spec, side, &options_b);
        // Nothing shown depends on the password.
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "{case:?}");
        let (Ok(a), Ok(b)) = (a, b) else { continue };
        assert_eq!(a.to_string(), b.to_string());
        assert_eq!(
            serde_json::to_string(&a).expect("a target serializes"),
            serde_json::to_string(&b).expect("a target serializes")
        );
        assert_eq!(
            a.connection_string.redacted(),
            b.connection_string.redacted()
        );
        // Scrubbing the full text removes the password from it, when the string holds it.
        let holds = SECRET_KEYS.iter().any(|k| {
            a.connection_string.secret(k).map(|s| s.expose().to_owned())
                == Some(case.password.clone())
        });
        if holds && !case.password.is_empty() && !case.password.contains('*') {
            let scrubbed = a.scrub(&a.connection_string.expose());
            assert!(!scrubbed.contains(&case.password), "{scrubbed:?}");
        }
        // The text handed to the workload parses back to the same string.
        let derived = &a.connection_string;
        let text = derived.expose();
        let back = ConnectionString::parse(&text)
            .unwrap_or_else(|e| panic!("derived {:?} does not parse: {e}", derived));
        assert_eq!(&back, derived);
        match side {
            Side::SqlServer => {
                assert_eq!(derived, &original_a);
                assert_eq!(text, original_a.expose());
            }
            Side::ManagedInstance => {
                derived_keys(case, &original_a, derived, &a);
            }
        }
    }
}

/// The keys of the string derived for the managed instance, against the user's.
fn derived_keys(
    case: &RedirectCase,
    original: &ConnectionString,
    derived: &ConnectionString,
    target: &RedirectTarget,
) {
    let before = key_counts(original);
    let after = key_counts(derived);
    let replaced = !case.auth.is_multiple_of(7);
    let owned = |id: &str| {
        id == Keyword::DataSource.canonical()
            || HOST_BOUND.iter().any(|k| k.canonical() == id)
            || (replaced && AUTH.iter().any(|k| k.canonical() == id))
    };
    // Every key the redirect does not own: as many times as written, with the same value.
    for (id, count) in &before {
        if !owned(id) {
            assert_eq!(after.get(id), Some(count), "{id:?} in {derived:?}");
        }
    }
    for key in original.keys().filter(|k| !owned(&key_id(k))) {
        assert_eq!(derived.get(key), original.get(key), "{key:?}");
        assert_eq!(
            derived.secret(key).map(|s| s.expose().to_owned()),
            original.secret(key).map(|s| s.expose().to_owned()),
            "{key:?}"
        );
    }
    for (id, count) in &after {
        if !owned(id) {
            assert_eq!(before.get(id), Some(count), "{id:?} added to {derived:?}");
        }
    }
    // Data Source once, naming the target.
    assert_eq!(after.get(Keyword::DataSource.canonical()), Some(&1));
    let port = target.port.expect("a managed instance target has a port");
    assert_eq!(
        derived.get_keyword(Keyword::DataSource),
        Some(format!("tcp:{},{port}", target.host).as_str())
    );
    for keyword in HOST_BOUND {
        assert!(!after.contains_key(keyword.canonical()), "{keyword:?} kept");
    }
    // Authentication as chosen.
    let count = |k: Keyword| after.get(k.canonical()).copied().unwrap_or(0);
    let password = derived
        .secret(Keyword::Password.canonical())
        .map(|s| s.expose().to_owned());
    match auth(case, &case.password) {
        RedirectAuth::Keep => {
            for keyword in AUTH {
                assert_eq!(
                    after.get(keyword.canonical()),
                    before.get(keyword.canonical()),
                    "{keyword:?}"
                );
            }
            assert_eq!(
                password,
                original.secret("Password").map(|s| s.expose().to_owned())
            );
        }
        RedirectAuth::SqlPassword { user, password: p } => {
            assert_eq!(count(Keyword::IntegratedSecurity), 0);
            assert_eq!(count(Keyword::Authentication), 0);
            assert_eq!(count(Keyword::UserId), 1);
            assert_eq!(count(Keyword::Password), 1);
            assert_eq!(derived.get_keyword(Keyword::UserId), Some(user.as_str()));
            assert_eq!(password.as_deref(), Some(p.expose()));
        }
        RedirectAuth::Entra(entra) => {
            assert_eq!(count(Keyword::IntegratedSecurity), 0);
            assert_eq!(count(Keyword::Authentication), 1);
            assert_eq!(
                derived.get_keyword(Keyword::Authentication),
                Some(entra.method())
            );
            let (user, secret) = match &entra {
                EntraAuth::Default { client_id } | EntraAuth::ManagedIdentity { client_id } => {
                    (client_id.clone(), None)
                }
                EntraAuth::Password { user, password } => {
                    (Some(user.clone()), Some(password.expose().to_owned()))
                }
                EntraAuth::ServicePrincipal { client_id, secret } => {
                    (Some(client_id.clone()), Some(secret.expose().to_owned()))
                }
                _ => (None, None),
            };
            assert_eq!(count(Keyword::UserId), usize::from(user.is_some()));
            assert_eq!(derived.get_keyword(Keyword::UserId), user.as_deref());
            assert_eq!(count(Keyword::Password), usize::from(secret.is_some()));
            assert_eq!(password, secret);
        }
        other => panic!("unexpected authentication {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// ARM and Arc models

/// The number of model kinds [`arm_model`] chooses from.
pub const ARM_MODELS: u8 = 20;

/// `body` read as the model `kind` (modulo [`ARM_MODELS`]).
pub fn arm_model(kind: u8, body: &[u8]) {
    use milink_core::arc::models as arc;
    use milink_core::arm::models as arm;
    match kind % ARM_MODELS {
        0 => serde_round_trip::<arm::ManagedInstance>(body),
        1 => serde_round_trip::<arm::ManagedDatabase>(body),
        2 => serde_round_trip::<arm::ServerTrustCertificate>(body),
        3 => serde_round_trip::<arm::EndpointCertificate>(body),
        4 => serde_round_trip::<arm::DistributedAvailabilityGroup>(body),
        5 => serde_round_trip::<arm::ErrorResponse>(body),
        6 => serde_round_trip::<arm::OperationStatus>(body),
        7 => serde_round_trip::<arm::Page<arm::ManagedDatabase>>(body),
        8 => serde_round_trip::<arm::Page<arm::ServerTrustCertificate>>(body),
        9 => serde_round_trip::<arm::Page<arm::DistributedAvailabilityGroup>>(body),
        10 => serde_round_trip::<arm::Page<arm::EndpointCertificate>>(body),
        11 => arc_round_trip::<arc::SqlServerInstance>(body),
        12 => arc_round_trip::<arc::SqlServerAvailabilityGroup>(body),
        13 => arc_round_trip::<arc::Listed<arc::SqlServerAvailabilityGroup>>(body),
        14 => arc_round_trip::<arc::MigrationAssessmentJob>(body),
        15 => arc_round_trip::<arc::MiLinkAssessmentResult>(body),
        16 => arc_round_trip::<arc::TelemetryTable>(body),
        17 => arc_round_trip::<arm::OperationStatus>(body),
        18 => serde_round_trip::<arm::Sku>(body),
        _ => blob(body),
    }
}

/// A certificate blob written by `binary_literal` (with or without `0x`, any case) reads back.
fn blob(bytes: &[u8]) {
    use milink_core::arm::models::{normalize_blob, same_blob};
    let literal = tsql::binary_literal(bytes);
    assert_eq!(normalize_blob(&literal).as_deref(), Some(bytes));
    let bare = literal[2..].to_lowercase();
    assert_eq!(normalize_blob(&bare).as_deref(), Some(bytes));
    assert!(same_blob(&literal, &format!(" 0X{bare}\n")));
    if let Ok(text) = std::str::from_utf8(bytes)
        && let Some(decoded) = normalize_blob(text)
    {
        // Whatever reads as a blob is hex: writing it back gives the same bytes.
        assert_eq!(
            normalize_blob(&tsql::binary_literal(&decoded)),
            Some(decoded)
        );
    }
}

/// `body` as `T`: if it reads, its JSON reads back to the same value and the same JSON.
fn serde_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(body: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(body) {
        stable::<T>(&value, |json| {
            serde_json::from_slice(json).map_err(|e| e.to_string())
        });
    }
}

/// `body` through Arc's `parse`: a value round-trips as above; a refusal is a typed error whose
/// message keeps no control character of the body and is cut to a bounded length.
fn arc_round_trip<T>(body: &[u8])
where
    T: milink_core::arc::models::ArcModel + Serialize + PartialEq + Debug,
{
    match milink_core::arc::models::parse::<T>(body) {
        Ok(value) => stable::<T>(&value, |json| {
            milink_core::arc::models::parse::<T>(json).map_err(|e| e.to_string())
        }),
        Err(e) => {
            let message = e.to_string();
            assert!(!message.chars().any(char::is_control), "{message:?}");
            assert!(message.chars().count() < 600, "{message:?}");
        }
    }
}

fn stable<T: Serialize + PartialEq + Debug>(value: &T, read: impl Fn(&[u8]) -> Result<T, String>) {
    let json = serde_json::to_vec(value).expect("a model serializes");
    let back = read(&json).unwrap_or_else(|e| {
        panic!(
            "{value:?} written as {} does not read back: {e}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(&back, value, "{}", String::from_utf8_lossy(&json));
    let again = serde_json::to_vec(&back).expect("a model serializes");
    assert_eq!(
        String::from_utf8_lossy(&again),
        String::from_utf8_lossy(&json)
    );
}

// ---------------------------------------------------------------------------------------------
// Journal

/// Appends a valid checksum (`,"sum":"…"}`, the first 16 hex digits of the SHA-256 of the line)
/// to every line of `bytes` that is a JSON object, the way the journal writes its records, so
/// a mutated record still reaches the record parser instead of stopping at its checksum.
pub fn with_checksums(bytes: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut out = Vec::with_capacity(bytes.len() + 64);
    let mut lines = bytes.split(|b| *b == b'\n').peekable();
    while let Some(line) = lines.next() {
        if line.starts_with(b"{") && line.ends_with(b"}") {
            let digest = Sha256::digest(line);
            out.extend_from_slice(&line[..line.len() - 1]);
            out.extend_from_slice(b",\"sum\":\"");
            for byte in &digest[..8] {
                out.extend_from_slice(format!("{byte:02x}").as_bytes());
            }
            out.extend_from_slice(b"\"}");
        } else {
            out.extend_from_slice(line);
        }
        if lines.peek().is_some() {
            out.push(b'\n');
        }
    }
    out
}

/// Whether `line` could be a record cut by a crash: a prefix of a record's start, a line that
/// starts like a record, or unwritten (NUL) bytes.
fn could_be_torn(line: &[u8]) -> bool {
    let start = RECORD_START.as_bytes();
    line.first() == Some(&0) || line.starts_with(start) || start.starts_with(line)
}

/// `bytes` written to `dir/journal.jsonl` and opened (see the module's documentation).
pub fn journal(bytes: &[u8], dir: &Path) {
    let path = dir.join("journal.jsonl");
    let _ = std::fs::remove_file(&path);
    std::fs::write(&path, bytes).expect("writes the file");
    let unchanged = |what: &str| {
        let now = std::fs::read(&path).expect("reads the file");
        assert!(now == bytes, "{what} changed the file");
    };

    // open: never changes the file.
    let opened = FileJournal::open(&path);
    unchanged("open");
    let opened = match opened {
        Ok(journal) => {
            let records = journal.records().expect("an opened journal reads");
            check_records(&records);
            Ok(records)
        }
        Err(e) => Err(e),
    };

    // open_repairing: removes a torn last line and nothing else.
    match FileJournal::open_repairing(&path) {
        Err(e) => {
            unchanged("a refused repair");
            assert!(
                opened.is_err(),
                "open_repairing refused ({e}) what open accepted"
            );
            assert_eq!(
                std::mem::discriminant(&e),
                std::mem::discriminant(opened.as_ref().expect_err("refused")),
                "open and open_repairing disagree: {e} / {:?}",
                opened.as_ref().err()
            );
        }
        Ok((journal, None)) => {
            unchanged("a repair with nothing to repair");
            let records = journal.records().expect("an opened journal reads");
            check_records(&records);
            let opened = opened.expect("open accepts what needs no repair");
            assert_eq!(records, opened);
        }
        Ok((journal, Some(torn))) => {
            let now = std::fs::read(&path).expect("reads the file");
            assert_eq!(now.len() as u64 + torn.bytes, bytes.len() as u64);
            assert!(bytes.starts_with(&now), "the repair changed kept bytes");
            assert!(now.is_empty() || now.ends_with(b"\n"));
            let removed = &bytes[now.len()..];
            let first_line = removed.split(|b| *b == b'\n').next().unwrap_or_default();
            // A file whose first line cannot be a record is no journal and is never cut.
            if now.is_empty() {
                assert!(
                    could_be_torn(first_line),
                    "cut a file that is no journal: {:?}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                );
            }
            // The removed part is one line (plus its newline at most).
            let newlines = removed.iter().filter(|b| **b == b'\n').count();
            assert!(newlines <= 1 && (newlines == 0 || removed.ends_with(b"\n")));
            match &opened {
                Err(JournalError::TornTail { line, bytes: b, .. }) => {
                    assert_eq!((*line, *b), (torn.line, torn.bytes));
                }
                other => panic!("repaired {torn:?} where open said {other:?}"),
            }
            let records = journal.records().expect("a repaired journal reads");
            check_records(&records);
            drop(journal);
            // The repair is complete: the journal now opens as it is.
            let again = FileJournal::open(&path).expect("a repaired journal opens");
            assert_eq!(again.records().expect("reads"), records);
        }
    }
}

/// Records a journal gave back: they validate, survive their own JSON, and replay without a
/// panic (a replay may refuse them with a typed error).
fn check_records(records: &[JournalRecord]) {
    journal::validate_records(records).expect("records of an opened journal validate");
    for record in records {
        let json = serde_json::to_string(record).expect("a record serializes");
        let back: JournalRecord = serde_json::from_str(&json).expect("a record reads back");
        assert_eq!(&back, record);
    }
    let _ = journal::replay(records);
}
