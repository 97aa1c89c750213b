//! The Tailspin lab: the main job.
//!
//! Until the simulator drives the whole workflow, this prints the T-SQL plan for linking
//! ToyStore from TailspinSql (SQL Server 2022 CU13+) to the managed instance tailspin-mi,
//! built with milink's builders: trust, endpoint, AG and DAG, then a planned failover.

use std::error::Error;
use std::time::Duration;

use milink_core::Secret;
use milink_core::names::{
    AgName, CertificateName, DatabaseName, EndpointHost, EndpointName, LinkName, MiFqdn,
    ServerName, TcpPort,
};
use milink_core::time::{Clock, SystemClock};
use milink_core::tsql::{self, Batch};

/// Prints one step: where it runs, what it does, and the batch as it may be shown (redacted).
fn step(n: &mut usize, side: &str, batch: &Batch) {
    *n += 1;
    println!("-- {n:>2}. [{side}] {}", batch.purpose());
    println!("{}", batch.display_sql());
}

fn main() -> Result<(), Box<dyn Error>> {
    let server = ServerName::new("TailspinSql")?;
    let database = DatabaseName::new("ToyStore")?;
    let sql_ag = AgName::new("AG_ToyStore")?;
    let mi_ag = AgName::new("MI_ToyStore")?;
    let link = LinkName::new("DAG_ToyStore")?;
    let mi = MiFqdn::new("tailspin-mi.abc123.database.windows.net")?;
    let sql_host = EndpointHost::new("10.0.0.4")?;
    let port = TcpPort::MIRRORING_DEFAULT;
    let sql_cert = CertificateName::new(format!("Cert_{server}_endpoint"))?;
    let expiry = SystemClock
        .now()
        .plus(Duration::from_secs(365 * 86_400))
        .date();
    // The password would come from a vault or a prompt; it is never printed.
    let master_key_password = Secret::new("<from your secret store>");
    // The managed instance's certificate and the root CA blobs come from the managed instance
    // (ARM endpointCertificates) and the Azure CA list; empty placeholders here.
    let mi_cert_der: &[u8] = &[];
    let root_ca_der: &[u8] = &[];

    println!(
        "-- milink {}: T-SQL plan to link {database} from {server} to {mi}",
        milink_core::VERSION
    );
    println!("-- (certificate blobs are placeholders: they come from the managed instance)\n");
    let mut n = 0;

    println!("-- Trust");
    step(
        &mut n,
        "SQL Server",
        &tsql::create_master_key(&master_key_password),
    );
    step(
        &mut n,
        "SQL Server",
        &tsql::create_endpoint_certificate(
            &sql_cert,
            &format!("Certificate for {sql_cert}"),
            expiry,
        ),
    );
    step(
        &mut n,
        "SQL Server",
        &tsql::export_certificate_public_key(&sql_cert),
    );
    println!("--     [Azure] PUT serverTrustCertificates/{sql_cert} with that public key\n");
    println!("--     (blob placeholder: the managed instance's DATABASE_MIRRORING certificate)");
    step(
        &mut n,
        "SQL Server",
        &tsql::import_certificate_from_binary(&mi.certificate_name(), mi_cert_der),
    );
    for (name, description) in tsql::azure_root_cas() {
        println!("--     (blob placeholder: root CA {name}, {description})");
        step(
            &mut n,
            "SQL Server",
            &tsql::import_root_ca(&name, root_ca_der, tsql::AZURE_DNS_PATTERN),
        );
    }

    println!("-- Endpoint");
    let endpoint = tsql::MirroringEndpointSpec {
        name: EndpointName::new("database_mirroring_endpoint")?,
        port,
        certificate: sql_cert.clone(),
        auth: tsql::EndpointAuth::Certificate,
        encryption: tsql::EndpointEncryption::Aes,
    };
    step(
        &mut n,
        "SQL Server",
        &tsql::create_mirroring_endpoint(&endpoint),
    );

    println!("-- Link");
    let sql_url = sql_host.tcp_url(port);
    step(
        &mut n,
        "SQL Server",
        &tsql::create_availability_group(&tsql::CreateAgSpec {
            ag: sql_ag.clone(),
            databases: vec![database.clone()],
            replica: server.clone(),
            endpoint_url: sql_url.clone(),
            cluster_type_none: true,
        }),
    );
    step(
        &mut n,
        "SQL Server",
        &tsql::create_distributed_availability_group(&tsql::CreateDagSpec {
            dag: link.clone(),
            sql_ag: sql_ag.clone(),
            sql_listener_url: sql_url,
            mi_ag: mi_ag.clone(),
            mi_fqdn: mi.clone(),
            mi_database: None,
            session_timeout_s: 20,
        }),
    );
    println!(
        "--     [Azure] PUT distributedAvailabilityGroups/{link} (joins the link; seeding starts)\n"
    );
    println!("-- Planned failover");
    step(
        &mut n,
        "SQL Server",
        &tsql::set_dag_availability_mode(
            &link,
            &sql_ag,
            &mi_ag,
            tsql::AvailabilityMode::SynchronousCommit,
        ),
    );
    println!(
        "--     [Azure] PATCH replicationMode = Sync; wait until last_hardened_lsn is equal and stable\n"
    );
    step(&mut n, "SQL Server", &tsql::failover_dag(&link));
    Ok(())
}
