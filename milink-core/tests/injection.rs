//! Injection: whatever a name or literal holds, it reads back from the generated T-SQL as exactly
//! one token equal to the input, and it never changes the shape of a builder's statement.
//!
//! The tokenizer (`properties/tsql_lexer.rs`, shared with the property tests and the fuzz
//! targets) is written independently of `milink_core::tsql::quote`.

use milink_core::Secret;
use milink_core::names::{
    AgName, CertificateName, DatabaseName, EndpointName, LinkName, MiFqdn, ServerName, TcpPort,
};
use milink_core::time::Date;
use milink_core::tsql::{self, Batch};
use proptest::prelude::*;

#[path = "properties/tsql_lexer.rs"]
mod tsql_lexer;
use tsql_lexer::{Tok, tokenize};

#[test]
fn the_tokenizer_sees_what_an_attacker_wants() {
    // The tokenizer must see through a naive quoting, or the properties below prove nothing.
    let naive = format!("DROP AVAILABILITY GROUP [{}];", "x]; DROP DATABASE y; --");
    let toks = tokenize(&naive).unwrap();
    assert!(toks.contains(&Tok::Word("DATABASE".into())));
    assert!(matches!(toks.last(), Some(Tok::Comment(_))));
    assert_eq!(
        tokenize("N'a''b' [c]]d] /* x /* y */ z */ 0x0aFF @v").unwrap(),
        vec![
            Tok::NString("a'b".into()),
            Tok::Bracketed("c]d".into()),
            Tok::Comment("/* x /* y */ z */".into()),
            Tok::Binary(vec![0x0a, 0xff]),
            Tok::Variable("@v".into()),
        ]
    );
    assert!(tokenize("[open").is_err());
    assert!(tokenize("N'open").is_err());
}

/// Arbitrary Unicode, biased toward the characters and sequences that break naive quoting.
fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => any::<char>().prop_filter("no NUL", |c| *c != '\0').prop_map(String::from),
        2 => prop::sample::select(vec![
            "]", "]]", "[", "'", "''", "\"", "--", "/*", "*/", ";", "N'", "GO", "0x", "\t", "\r\n",
            "\n", " ", "\u{1b}", "\u{7f}", "\u{85}", "\u{2028}", "😀", "é",
        ])
        .prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

/// Makes `s` a valid sysname: no control or invisible formatting characters, no surrounding
/// whitespace, at most 128 UTF-16 units, not empty; `extra` removes characters a type refuses.
fn sysname(s: &str, extra: &[char]) -> String {
    let mut out = String::new();
    let mut units = 0;
    for c in s.chars().filter(|c| {
        !c.is_control() && !milink_core::names::is_format_character(*c) && !extra.contains(c)
    }) {
        if units + c.len_utf16() > 128 {
            break;
        }
        units += c.len_utf16();
        out.push(c);
    }
    let trimmed = out.trim();
    if trimmed.is_empty() {
        "x]'".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The bracket quoting the test expects, written independently of the library.
fn bracketed(s: &str) -> String {
    format!("[{}]", s.replace(']', "]]"))
}

const PLACEHOLDER: &str = "Zq9";

/// The batch built with `hostile` has exactly the tokens of the batch built with the
/// placeholder, except that a token carrying the placeholder carries `hostile` instead
/// (whole, or bracket-quoted inside a listener URL).
fn assert_same_shape(benign: &Batch, bad: &Batch, hostile: &str, sensitive: bool) {
    let text = |b: &Batch| {
        if sensitive {
            b.expose_sql().to_owned()
        } else {
            b.display_sql().to_owned()
        }
    };
    let b = tokenize(&text(benign)).unwrap();
    let h = tokenize(&text(bad)).unwrap_or_else(|e| panic!("{e}: {}", text(bad)));
    assert_eq!(b.len(), h.len(), "token count changed:\n{}", text(bad));
    for (bt, ht) in b.iter().zip(&h) {
        if bt == ht {
            continue;
        }
        let ok = match (bt, ht) {
            (Tok::Bracketed(bv), Tok::Bracketed(hv))
            | (Tok::NString(bv), Tok::NString(hv))
            | (Tok::String(bv), Tok::String(hv)) => {
                *hv == bv.replace(PLACEHOLDER, hostile)
                    || *hv == bv.replace(&bracketed(PLACEHOLDER), &bracketed(hostile))
            }
            _ => false,
        };
        assert!(ok, "{bt:?} became {ht:?} in:\n{}", text(bad));
    }
}

/// Every builder that takes a name, as a function of one valid name (used in every slot).
type Builder = Box<dyn Fn(&str) -> Batch>;

fn name_builders() -> Vec<Builder> {
    fn db(s: &str) -> DatabaseName {
        DatabaseName::new(s).unwrap()
    }
    fn ag(s: &str) -> AgName {
        AgName::new(s).unwrap()
    }
    fn link(s: &str) -> LinkName {
        LinkName::new(s).unwrap()
    }
    fn cert(s: &str) -> CertificateName {
        CertificateName::new(s).unwrap()
    }
    fn fqdn() -> MiFqdn {
        MiFqdn::new("tailspin-mi.abc123.database.windows.net").unwrap()
    }
    const URL: &str = "TCP://10.0.0.4:5022";
    vec![
        Box::new(|s| {
            tsql::create_endpoint_certificate(&cert(s), "subject", Date::new(2030, 1, 2).unwrap())
        }),
        Box::new(|s| tsql::export_certificate_public_key(&cert(s))),
        Box::new(|s| tsql::import_certificate_from_binary(&cert(s), &[0x30, 0x82])),
        Box::new(|s| tsql::import_root_ca(&cert(s), &[0x30], tsql::AZURE_DNS_PATTERN)),
        Box::new(|s| {
            tsql::create_mirroring_endpoint(&tsql::MirroringEndpointSpec {
                name: EndpointName::new(s).unwrap(),
                port: TcpPort::MIRRORING_DEFAULT,
                certificate: cert(s),
                auth: tsql::EndpointAuth::WindowsNegotiateCertificate,
                encryption: tsql::EndpointEncryption::Aes,
            })
        }),
        Box::new(|s| {
            tsql::alter_mirroring_endpoint(&tsql::MirroringEndpointSpec {
                name: EndpointName::new(s).unwrap(),
                port: TcpPort::MIRRORING_DEFAULT,
                certificate: cert(s),
                auth: tsql::EndpointAuth::Certificate,
                encryption: tsql::EndpointEncryption::AesRc4,
            })
        }),
        Box::new(|s| {
            tsql::create_availability_group(&tsql::CreateAgSpec {
                ag: ag(s),
                databases: vec![db(s), db(s)],
                replica: ServerName::new(s).unwrap(),
                endpoint_url: URL.to_owned(),
                cluster_type_none: true,
            })
        }),
        Box::new(|s| {
            tsql::create_distributed_availability_group(&tsql::CreateDagSpec {
                dag: link(s),
                sql_ag: ag(s),
                sql_listener_url: URL.to_owned(),
                mi_ag: ag(s),
                mi_fqdn: fqdn(),
                mi_database: Some(db(s)),
                session_timeout_s: 20,
            })
        }),
        Box::new(|s| tsql::grant_create_any_database(&ag(s))),
        Box::new(|s| {
            tsql::set_dag_availability_mode(
                &link(s),
                &ag(s),
                &ag(s),
                tsql::AvailabilityMode::SynchronousCommit,
            )
        }),
        Box::new(|s| tsql::failover_dag(&link(s))),
        Box::new(|s| tsql::force_failover_dag(&link(s))),
        Box::new(|s| tsql::set_dag_role_secondary(&link(s))),
        Box::new(|s| tsql::drop_availability_group(&ag(s))),
        Box::new(|s| tsql::drop_distributed_availability_group(&link(s))),
        Box::new(|s| tsql::probe_replica_states(&link(s))),
        Box::new(|s| tsql::probe_database_replica_states(&link(s))),
        Box::new(|s| tsql::probe_database_replica_states_by_database(&[db(s), db(s)])),
        Box::new(|s| tsql::probe_first_full_backups(&[db(s), db(s)])),
        Box::new(|s| tsql::probe_certificates(&[cert(s), cert(s)])),
    ]
}

/// Every builder that takes free text (subject, DNS pattern, password), as a function of it.
/// The second value says whether the text is a secret (compare the text sent to the server).
fn text_builders() -> Vec<(bool, Builder)> {
    fn cert() -> CertificateName {
        CertificateName::new("Cert_TailspinSql_endpoint").unwrap()
    }
    vec![
        (true, Box::new(|s| tsql::create_master_key(&Secret::new(s)))),
        (
            false,
            Box::new(|s| {
                tsql::create_endpoint_certificate(&cert(), s, Date::new(2030, 1, 2).unwrap())
            }),
        ),
        (
            false,
            Box::new(|s| tsql::import_root_ca(&cert(), &[0x30], s)),
        ),
    ]
}

proptest! {
    #[test]
    fn a_quoted_identifier_is_one_token_equal_to_the_input(s in hostile()) {
        prop_assert_eq!(tokenize(&tsql::quote_ident(&s)), Ok(vec![Tok::Bracketed(s.clone())]));
    }

    #[test]
    fn a_unicode_literal_is_one_token_equal_to_the_input(s in hostile()) {
        prop_assert_eq!(tokenize(&tsql::quote_nstring(&s)), Ok(vec![Tok::NString(s.clone())]));
    }

    #[test]
    fn a_binary_literal_is_one_token_equal_to_the_input(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        prop_assert_eq!(tokenize(&tsql::binary_literal(&bytes)), Ok(vec![Tok::Binary(bytes.clone())]));
    }

    #[test]
    fn validated_names_read_back_through_quoted_and_literal(s in hostile()) {
        use milink_core::tsql::SqlIdentifier;
        let name = DatabaseName::new(sysname(&s, &[])).unwrap();
        prop_assert_eq!(tokenize(&name.quoted()), Ok(vec![Tok::Bracketed(name.as_str().to_owned())]));
        prop_assert_eq!(tokenize(&name.literal()), Ok(vec![Tok::NString(name.as_str().to_owned())]));
    }

    #[test]
    fn hostile_names_never_change_a_statement(s in hostile()) {
        let name = sysname(&s, &['\\']);
        for build in name_builders() {
            assert_same_shape(&build(PLACEHOLDER), &build(&name), &name, false);
        }
    }

    #[test]
    fn hostile_text_never_changes_a_statement(s in hostile()) {
        for (sensitive, build) in text_builders() {
            assert_same_shape(&build(PLACEHOLDER), &build(&s), &s, sensitive);
        }
    }
}

#[test]
fn the_lab_names_with_a_hostile_database_keep_their_shape() {
    let hostile = "Toy]Store' --";
    for build in name_builders() {
        assert_same_shape(&build(PLACEHOLDER), &build(hostile), hostile, false);
    }
}

#[test]
fn a_naive_builder_would_fail_the_shape_check() {
    // The shape check itself must catch an injection, or passing it means nothing.
    let naive = |s: &str| Batch::new("naive", format!("DROP AVAILABILITY GROUP [{s}];"));
    let result = std::panic::catch_unwind(|| {
        assert_same_shape(
            &naive(PLACEHOLDER),
            &naive("x]; DROP DATABASE y; --"),
            "x]; DROP DATABASE y; --",
            false,
        )
    });
    assert!(result.is_err());
}
