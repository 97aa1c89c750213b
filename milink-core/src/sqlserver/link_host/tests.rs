//! Which builds can host the link, and the check over loopback TDS against a scripted server
//! answering old and new builds.

use super::*;

fn v(text: &str) -> SqlVersion {
    SqlVersion::parse(text).unwrap()
}

#[test]
fn builds_at_or_above_the_minimum_with_add_issuer_pass() {
    for ok in [
        "13.0.7000.253",
        "14.0.3490.10",
        "15.0.4312.2",
        "15.0.4430.1",
        "16.0.1000.6",
        "16.0.4125.3",
        "17.0.1000.7",
    ] {
        assert_eq!(judge_link_host(v(ok), true), Ok(()), "{ok}");
    }
}

#[test]
fn an_old_build_names_the_found_build_the_minimum_and_the_update() {
    // SQL Server 2019 CU16.
    let err = judge_link_host(v("15.0.4236.7"), true).unwrap_err();
    assert_eq!(
        err,
        LinkHostError::BuildTooOld {
            found: v("15.0.4236.7"),
            minimum: v("15.0.4312.2"),
            fix: "install SQL Server 2019 cumulative update 20 (KB5024276) (build 15.0.4312.2) \
                  or a later update"
                .into(),
        }
    );
    let text = err.to_string();
    assert!(text.contains("SQL Server 2019 build 15.0.4236.7"), "{text}");
    assert!(
        text.contains("minimum for SQL Server 2019 is 15.0.4312.2"),
        "{text}"
    );

    // SQL Server 2016 SP2: SP3, then the Azure Connect pack.
    let err = judge_link_host(v("13.0.5026.0"), true).unwrap_err();
    let LinkHostError::BuildTooOld { minimum, fix, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(*minimum, v("13.0.6300.2"));
    assert!(
        fix.contains("Service Pack 3 (KB5003279) (build 13.0.6300.2)"),
        "{fix}"
    );
    assert!(
        fix.contains("Azure Connect pack (build 13.0.7000.253)"),
        "{fix}"
    );

    // SQL Server 2017 CU30.
    let err = judge_link_host(v("14.0.3451.2"), true).unwrap_err();
    assert!(err.to_string().contains("cumulative update 31"), "{err}");
    assert_eq!(err.found(), Some(v("14.0.3451.2")));
}

#[test]
fn releases_without_the_link_and_missing_connect_packs_are_refused() {
    let err = judge_link_host(v("12.0.6024.0"), true).unwrap_err();
    assert_eq!(
        err,
        LinkHostError::UnsupportedRelease {
            found: v("12.0.6024.0")
        }
    );
    assert!(err.to_string().contains("2014 or earlier"), "{err}");

    // 2016 SP3 without the Azure Connect pack.
    let err = judge_link_host(v("13.0.6300.2"), false).unwrap_err();
    let LinkHostError::AzureConnectPackMissing { pack, fix, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(*pack, Some(v("13.0.7000.253")));
    assert!(
        fix.contains("Azure Connect pack (build 13.0.7000.253)"),
        "{fix}"
    );

    let port: PortError = err.into();
    assert_eq!(
        port.kind,
        PortErrorKind::Other(UNSUPPORTED_BUILD_CODE.to_owned())
    );
    assert!(!port.transient);
}

#[cfg(feature = "sim")]
mod loopback {
    use std::sync::Arc;

    use super::*;
    use crate::secret::Secret;
    use crate::sim::tds::{Column, Outcome, SqlType, Value as WireValue};
    use crate::sqlserver::connection::Connection;
    use crate::sqlserver::render::RenderContext;
    use crate::sqlserver::testkit::{Lab, NeverTimer, bounded, error, nvarchar, rows, s};

    /// Answers the instance properties probe as a server of `build` would.
    async fn server(build: &'static str, add_issuer: bool) -> Lab {
        Lab::start(move |sql| {
            if !sql.contains("SERVERPROPERTY('ProductVersion')") {
                return vec![error(208, "Invalid object name.")];
            }
            vec![
                Outcome::Count(0),
                rows(
                    vec![
                        nvarchar("product_version"),
                        nvarchar("product_update_level"),
                        nvarchar("edition"),
                        Column::new("is_hadr_enabled", SqlType::Int),
                        nvarchar("server_name"),
                        Column::new("has_certificate_add_issuer", SqlType::Bit),
                    ],
                    vec![vec![
                        s(build),
                        WireValue::Null,
                        s("Enterprise Edition (64-bit)"),
                        WireValue::Int(1),
                        s("TAILSPINSQL"),
                        WireValue::Bit(add_issuer),
                    ]],
                ),
            ]
        })
        .await
    }

    fn adapter(lab: &Lab) -> SqlServerAdapter {
        SqlServerAdapter::new(
            Connection::new(lab.connection().options().clone(), Arc::new(NeverTimer)),
            RenderContext::new(Secret::new("Str0ng!MasterKey#1")),
        )
    }

    #[tokio::test]
    async fn a_new_build_can_host_the_link() {
        let lab = server("16.0.4125.3", true).await;
        let got = bounded(adapter(&lab).check_can_host_link()).await;
        assert_eq!(got, Ok(v("16.0.4125.3")));
        assert_eq!(lab.seen().len(), 1, "one round trip");
    }

    #[tokio::test]
    async fn an_old_build_is_refused_before_anything_is_prepared() {
        let lab = server("15.0.4236.7", true).await;
        let err = bounded(adapter(&lab).check_can_host_link())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, LinkHostError::BuildTooOld { found, minimum, .. }
                if *found == v("15.0.4236.7") && *minimum == v("15.0.4312.2")),
            "{err}"
        );
        assert!(err.to_string().contains("cumulative update 20"), "{err}");
        assert_eq!(lab.seen().len(), 1, "nothing else was sent");

        let lab = server("13.0.6300.2", false).await;
        let err = bounded(adapter(&lab).check_can_host_link())
            .await
            .unwrap_err();
        assert!(
            matches!(err, LinkHostError::AzureConnectPackMissing { .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_failed_read_is_a_read_error() {
        let lab = Lab::start(|_| vec![error(229, "The SELECT permission was denied.")]).await;
        let err = bounded(adapter(&lab).check_can_host_link())
            .await
            .unwrap_err();
        let LinkHostError::Read(port) = &err else {
            panic!("{err}");
        };
        assert_eq!(port.kind, PortErrorKind::Sql(229));
        assert_eq!(err.found(), None);

        let lab = server("not a build", true).await;
        let err = bounded(adapter(&lab).check_can_host_link())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, LinkHostError::Read(p) if p.kind == PortErrorKind::Other(ROWSET_CODE.to_owned())),
            "{err}"
        );
    }
}
