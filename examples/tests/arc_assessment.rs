//! The Tailspin lab assessed through Azure Arc (the real Arc client over loopback HTTPS to the
//! simulated Azure), beside milink's own assessment: the verdicts, the mapping of Arc's findings
//! to milink's rules, the disagreements with both pieces of evidence, what the extension needs,
//! and that nothing but the assessments was asked of Azure.

use milink_core::sim::Lab;
use milink_examples::arc_assessment::{ArcSection, ROUTES, assess_lab_through_arc};

async fn section(seed: u64) -> ArcSection {
    let lab = Lab::tailspin(seed).unwrap();
    assess_lab_through_arc(&lab.sim, &lab.spec).await.unwrap()
}

#[tokio::test]
async fn toystore_is_ready_through_arc_and_customer360_is_not() {
    let s = section(7).await;
    let verdict = |db: &str| {
        let v = s.verdicts.iter().find(|v| v.database == db).unwrap();
        (v.through_arc.as_str(), v.over_tsql.as_str())
    };
    assert_eq!(verdict(Lab::TOYSTORE), ("Ready", "Ready"));
    assert_eq!(verdict(Lab::CUSTOMER360), ("NotReady", "NotReady"));
    assert!(s.arc_instance.ends_with("/sqlServerInstances/TailspinSql"));

    // Arc's checks beside milink's rules: the recovery model fails on both sides for
    // Customer360; Arc's PKI check has no fact on Arc's side for milink's rule.
    let check = |name: &str| s.checks.iter().find(|c| c.check == name).unwrap();
    let recovery = check("DatabaseRecoveryModel");
    assert_eq!(recovery.status, "Failure");
    assert_eq!(recovery.failing_databases, vec![Lab::CUSTOMER360]);
    assert_eq!(recovery.milink_rule.as_deref(), Some("Link.RecoveryModel"));
    assert_eq!(
        recovery.milink_on_arc_facts.as_ref().unwrap().result,
        "fails (blocker)"
    );
    let pki = check("MicrosoftPkiCertificate");
    assert_eq!(pki.milink_rule.as_deref(), Some("Link.RootCaTrust"));
    assert_eq!(
        pki.milink_on_arc_facts.as_ref().unwrap().result,
        "not evaluated"
    );
    assert_eq!(
        pki.milink_over_tsql.as_ref().unwrap().result,
        "fails (warning)"
    );
    // Arc's migration assessment: FILESTREAM in Customer360, which milink sees over T-SQL
    // only; the SKU recommendation.
    let filestream = s
        .migration
        .iter()
        .find(|f| f.feature == "FileStream")
        .unwrap();
    assert_eq!(filestream.impacted, vec![Lab::CUSTOMER360]);
    assert_eq!(
        filestream.milink_over_tsql.as_ref().unwrap().result,
        "fails (blocker)"
    );
    let sku = s.sku.as_ref().unwrap();
    assert_eq!(sku.status, "NotReady");
    assert_eq!(sku.server_blockers, Some(1));
}

#[tokio::test]
async fn the_disagreements_carry_both_pieces_of_evidence() {
    // The lab's facts do not depend on the seed: the same disagreements on each.
    for seed in [8, 9] {
        let s = section(seed).await;
        assert_eq!(
            s.disagreements.len(),
            3,
            "seed {seed}: {:#?}",
            s.disagreements
        );
    }
    let s = section(7).await;
    let found: Vec<(&str, &str)> = s
        .disagreements
        .iter()
        .map(|d| (d.subject.as_str(), d.route.as_str()))
        .collect();
    assert_eq!(
        found,
        vec![
            ("TraceFlags", ROUTES[0]),
            ("TraceFlags", ROUTES[1]),
            ("MultipleLogFiles", ROUTES[1]),
        ]
    );
    // Arc lists the link's own trace flags; milink's rule sets them aside.
    let flags = &s.disagreements[0];
    assert_eq!(flags.milink, "TraceFlags passes");
    assert!(flags.arc.contains("1800, 9567"), "{}", flags.arc);
    // milink counts Customer360's second log file; Arc's migration assessment does not.
    let logs = &s.disagreements[2];
    assert!(
        logs.milink.contains("Customer360: 2 log files"),
        "{}",
        logs.milink
    );
    assert_eq!(logs.arc, "migration assessment does not list it");

    let text = s.text();
    for line in [
        "ToyStore: Ready through Arc, Ready over T-SQL",
        "Customer360: NotReady through Arc, NotReady over T-SQL",
        "TraceFlags (milink on Arc's facts)",
        "Arc:    migration assessment: TraceFlags Warning (impacted: 1800, 9567)",
        "MultipleLogFiles (milink over T-SQL)",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    // The JSON is the same section.
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<ArcSection>(&json).unwrap(), s);
}

#[tokio::test]
async fn the_section_names_what_the_extension_needs_and_asks_azure_for_no_change() {
    let s = section(8).await;
    let steps: Vec<&str> = s.permissions.iter().map(|p| p.step.as_str()).collect();
    assert_eq!(steps, vec!["create", "cutover", "cancel"]);
    let create = &s.permissions[0];
    assert_eq!(
        create.rbac_action,
        "Microsoft.AzureArcData/sqlServerInstances/createManagedInstanceLink/action"
    );
    assert!(create.jit_sql.iter().any(|p| p == "CREATE ENDPOINT"));
    assert!(!create.jit_sql.iter().any(|p| p == "sysadmin"));
    for p in &s.permissions[1..] {
        assert!(p.jit_sql.iter().any(|p| p == "sysadmin"), "{p:?}");
    }
    assert!(s.text().contains("failoverMiLink/action"));
    // GETs, the two assessments, nothing else.
    let posts: Vec<&str> = s
        .requests
        .keys()
        .filter(|k| !k.starts_with("GET "))
        .map(String::as_str)
        .collect();
    assert_eq!(
        posts,
        vec![
            "POST arc runManagedInstanceLinkAssessment",
            "POST arc runMigrationAssessment"
        ]
    );
}
