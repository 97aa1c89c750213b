//! Shared fixtures for unit tests.

use std::time::Duration;

use crate::lifecycle::{
    FailoverMode, LinkSpec, MachineOptions, SeedingMode, Side, SourceSpec, TargetSpec,
};
use crate::names::{
    AgName, CertificateName, DatabaseName, EndpointHost, EndpointName, InstanceId, LinkMode,
    LinkName, MiFqdn, ServerName, SqlVersion, UpdatePolicy,
};
use crate::time::Date;

/// The lab's ToyStore link: SQL Server 2022 to an instance with the 2022 update policy.
pub(crate) fn spec() -> LinkSpec {
    LinkSpec {
        link: LinkName::new("ToyStoreLink").unwrap(),
        mode: LinkMode::SingleDatabase,
        databases: vec![DatabaseName::new("ToyStore").unwrap()],
        initial_primary: Side::SqlServer,
        failover_mode: FailoverMode::Manual,
        seeding_mode: SeedingMode::Automatic,
        source: SourceSpec {
            server: ServerName::new("TAILSPINSQL").unwrap(),
            version: SqlVersion::parse("16.0.4125.3").unwrap(),
            endpoint_host: EndpointHost::new("tailspinsql.corp.example").unwrap(),
            endpoint_port: crate::names::TcpPort::MIRRORING_DEFAULT,
            endpoint_name: EndpointName::new("dbm_endpoint").unwrap(),
            certificate: CertificateName::new("Cert_TAILSPINSQL_endpoint").unwrap(),
            certificate_expiry: Date::new(2030, 1, 1).unwrap(),
            ag: AgName::new("AG_ToyStore").unwrap(),
        },
        target: TargetSpec {
            instance: InstanceId::from_parts(
                "00000000-0000-0000-0000-000000000001",
                "rg-tailspin",
                "tailspin-mi",
            )
            .unwrap(),
            fqdn: MiFqdn::new("tailspin-mi.abc123.database.windows.net").unwrap(),
            ag: AgName::new("AG_ToyStore_MI").unwrap(),
            update_policy: UpdatePolicy::SqlServer2022,
        },
        session_timeout_s: 20,
        route: crate::lifecycle::LinkRoute::Direct,
        options: MachineOptions {
            probe_interval: Duration::from_secs(5),
            // The machine's tests read the gate at the probe interval; the sub-second gate has
            // tests of its own.
            gate_interval: Duration::from_secs(5),
            stability_window: Duration::from_secs(10),
            ..MachineOptions::default()
        },
    }
}

/// A virtual clock: `sleep_until` jumps straight to the deadline (after yielding once, so other
/// tasks can run), so tests that wait minutes finish at once.
#[derive(Debug)]
pub(crate) struct VirtualTimer {
    now: std::sync::atomic::AtomicU64,
}

impl VirtualTimer {
    pub(crate) fn new(start: crate::time::Timestamp) -> Self {
        VirtualTimer {
            now: std::sync::atomic::AtomicU64::new(start.as_millis()),
        }
    }
}

impl crate::time::Clock for VirtualTimer {
    fn now(&self) -> crate::time::Timestamp {
        crate::time::Timestamp::from_millis(self.now.load(std::sync::atomic::Ordering::SeqCst))
    }
}

#[async_trait::async_trait]
impl crate::time::Timer for VirtualTimer {
    async fn sleep_until(&self, deadline: crate::time::Timestamp) {
        tokio::task::yield_now().await;
        self.now
            .fetch_max(deadline.as_millis(), std::sync::atomic::Ordering::SeqCst);
    }
}
