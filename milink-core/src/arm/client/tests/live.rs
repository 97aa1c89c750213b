//! Opt-in, read-only: a real managed instance through Azure Resource Manager, with the
//! credential the environment names. `MILINK_LIVE_MI` is the instance's resource id.

use crate::arm::client::credential_from_environment;
use crate::time::SystemTimer;

use super::*;

/// Reads the instance, its databases, server trust certificates and links; prints them.
/// Nothing is written.
#[tokio::test]
#[ignore = "needs a managed instance: set MILINK_LIVE_MI to its resource id and sign in"]
async fn live_arm_read_only() {
    let Ok(id) = std::env::var("MILINK_LIVE_MI") else {
        eprintln!("MILINK_LIVE_MI is not set; nothing to do");
        return;
    };
    let instance: InstanceId = id.trim().parse().unwrap();
    let credential = credential_from_environment().unwrap();
    let mi = ArmManagedInstance::with_timer(
        instance,
        credential,
        ArmOptions::default(),
        Arc::new(SystemTimer),
    )
    .unwrap();
    let found = mi.managed_instance().await.unwrap();
    println!(
        "instance {} in {}: {} ({:?}), provisioning {:?}, databaseFormat {:?}",
        found.name.as_deref().unwrap_or("?"),
        found.location.as_deref().unwrap_or("?"),
        found
            .properties
            .fully_qualified_domain_name
            .as_deref()
            .unwrap_or("?"),
        found.sku.as_ref().and_then(|s| s.name.as_deref()),
        found.properties.provisioning_state,
        found.properties.database_format,
    );
    for db in mi.databases().await.unwrap() {
        println!(
            "database {} ({})",
            db.name.as_deref().unwrap_or("?"),
            db.properties.status.as_deref().unwrap_or("?")
        );
    }
    for c in mi.server_trust_certificates().await.unwrap() {
        println!(
            "server trust certificate {} (thumbprint {})",
            c.certificate_name().unwrap_or("?"),
            c.properties.thumbprint.as_deref().unwrap_or("?")
        );
    }
    for l in mi.links().await.unwrap() {
        let p = &l.properties;
        println!(
            "link {}: instance {:?}, replication {:?}, partner {} at {}, {} database(s)",
            l.name.as_deref().unwrap_or("?"),
            p.instance_link_role,
            p.replication_mode,
            p.partner_availability_group_name.as_deref().unwrap_or("?"),
            p.partner_endpoint.as_deref().unwrap_or("?"),
            p.databases.len()
        );
    }
}
