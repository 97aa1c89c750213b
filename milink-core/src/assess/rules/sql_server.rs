//! Instance checks on SQL Server: version, edition, HADR, endpoint, certificates.

use crate::assess::facts::{Edition, HostPlatform};
use crate::names::{CertificateName, EndpointName, LinkMode, TcpPort};
use crate::secret::Secret;
use crate::tsql::remediation::{self, LinkTraceFlag};
use crate::tsql::{
    EndpointAuth, EndpointEncryption, MirroringEndpointSpec, alter_mirroring_endpoint,
    azure_root_cas, create_master_key,
};

use super::{
    Check, Context, Evidence, F11, F13, F14, F15, Fix, Outcome, Rule, ScopeKind, Severity, list,
};

/// This group's part of the catalogue, in catalogue order.
pub(super) const RULES: &[Rule] = &[
    SQL_VERSION,
    AZURE_CONNECT_PACK,
    EDITION,
    MULTI_DATABASE_MODE,
    HOST_OS,
    HADR_ENABLED,
    LINK_TRACE_FLAGS,
    MASTER_KEY,
    ENDPOINT_MISSING,
    ENDPOINT,
    CERTIFICATE_EXPIRED,
    CERTIFICATE_EXPIRING,
    ROOT_CA_TRUST,
];

const SQL_VERSION: Rule = rule!(
    "Link.SqlVersion",
    Blocker,
    Instance,
    "SQL Server version supports the link",
    F11,
    "SERVERPROPERTY('ProductVersion') against the minimum builds",
    Instance(sql_version)
);
fn sql_version(ctx: &Context<'_>) -> Outcome {
    let v = ctx.instance.version;
    let caps = v.capabilities();
    if caps.link_supported {
        return Outcome::Pass;
    }
    let ev = Evidence::new(format!(
        "{} build {v} does not support the managed instance link",
        v.release_name()
    ))
    .with("version", v);
    match caps.minimum_build {
        Some(min) => Outcome::Fail(
            ev.with("minimum build", min),
            Fix::action(format!(
                "Update {} to build {min} or later.",
                v.release_name()
            )),
        ),
        None => Outcome::Fail(
            ev,
            Fix::action(
                "Upgrade to a release that supports the link: SQL Server 2016 SP3 with the Azure \
                 Connect pack, 2017 CU31 with the Azure Connect pack, 2019 CU20, 2022 or 2025.",
            ),
        ),
    }
}

const AZURE_CONNECT_PACK: Rule = rule!(
    "Link.AzureConnectPack",
    Blocker,
    Instance,
    "sp_certificate_add_issuer is available (CU / Azure Connect pack)",
    F14,
    "OBJECT_ID('sys.sp_certificate_add_issuer')",
    Instance(azure_connect_pack)
);
fn azure_connect_pack(ctx: &Context<'_>) -> Outcome {
    if ctx.instance.has_certificate_add_issuer {
        return Outcome::Pass;
    }
    let v = ctx.instance.version;
    let ev = Evidence::new(
        "sys.sp_certificate_add_issuer does not exist: the build can't trust the Azure root CAs",
    )
    .with("version", v);
    let fix = match v.capabilities().azure_connect_pack {
        Some(pack) => Fix::action(format!(
            "Install the {} Azure Connect pack (build {pack}).",
            v.release_name()
        )),
        None => Fix::action(format!(
            "Install the latest cumulative update of {}; link-capable builds ship sp_certificate_add_issuer.",
            v.release_name()
        )),
    };
    Outcome::Fail(ev, fix)
}

const EDITION: Rule = rule!(
    "Link.Edition",
    Blocker,
    Instance,
    "Edition supports availability groups",
    F11,
    "SERVERPROPERTY('Edition')",
    Instance(edition)
);
fn edition(ctx: &Context<'_>) -> Outcome {
    match ctx.instance.edition {
        Edition::Enterprise | Edition::Standard | Edition::Developer | Edition::Evaluation => {
            Outcome::Pass
        }
        e @ (Edition::Express | Edition::Web | Edition::Other) => Outcome::Fail(
            Evidence::new(format!(
                "the {e} edition can't host availability groups; the link needs Enterprise, Standard or Developer"
            ))
            .with("edition", e),
            Fix::action("Upgrade the instance to Enterprise, Standard or Developer edition."),
        ),
    }
}

const MULTI_DATABASE_MODE: Rule = rule!(
    "Link.MultiDatabaseMode",
    Blocker,
    Instance,
    "MultiDatabase link mode is supported",
    "milink-facts §1.2",
    "major version and edition; the CU27 / CU9 build numbers are not in the reference, so the CU is not checked",
    Instance(multi_database_mode)
);
fn multi_database_mode(ctx: &Context<'_>) -> Outcome {
    if ctx.options.link_mode != LinkMode::MultiDatabase {
        return Outcome::Pass;
    }
    let i = ctx.instance;
    let mut problems = Vec::new();
    if i.version.major < 16 {
        problems.push(format!(
            "{} does not support MultiDatabase links (2022 CU27+ or 2025 CU9+)",
            i.version.release_name()
        ));
    }
    if !matches!(
        i.edition,
        Edition::Enterprise | Edition::Developer | Edition::Evaluation
    ) {
        problems.push(format!(
            "the {} edition's basic availability groups hold one database",
            i.edition
        ));
    }
    if problems.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(problems.join("; "))
            .with("version", i.version)
            .with("edition", i.edition),
        Fix::action(
            "Use SingleDatabase link mode (one link per database), or move to SQL Server 2022 \
             CU27+ / 2025 CU9+ Enterprise or Developer.",
        ),
    )
}

const HOST_OS: Rule = rule!(
    "Link.HostOs",
    Blocker,
    Instance,
    "Host OS can run the link",
    F11,
    "the host named by @@VERSION",
    Instance(host_os)
);
fn host_os(ctx: &Context<'_>) -> Outcome {
    let h = &ctx.instance.host;
    if h.is_windows_client() {
        return Outcome::Fail(
            Evidence::new(format!(
                "{} is a client OS: the availability group feature can't be enabled",
                h.description
            ))
            .with("host", &h.description),
            Fix::action("Host SQL Server on Windows Server 2012 or later, or on Linux (2017+)."),
        );
    }
    if h.platform == HostPlatform::Linux && ctx.instance.version.major == 13 {
        return Outcome::Fail(
            Evidence::new("SQL Server 2016 supports the link on Windows Server only")
                .with("host", &h.description),
            Fix::action(
                "Use SQL Server 2017 or later on Linux, or SQL Server 2016 on Windows Server.",
            ),
        );
    }
    Outcome::Pass
}

const HADR_ENABLED: Rule = rule!(
    "Link.HadrEnabled",
    Blocker,
    Instance,
    "Always On availability groups are enabled",
    F13,
    "SERVERPROPERTY('IsHadrEnabled')",
    Instance(hadr_enabled)
);
fn hadr_enabled(ctx: &Context<'_>) -> Outcome {
    if ctx.instance.hadr_enabled {
        return Outcome::Pass;
    }
    let wsfc = if ctx.instance.version.capabilities().wsfc_required {
        " SQL Server 2016 first needs a Windows Server Failover Cluster (a single-node cluster \
         is enough) and the ALTER ANY AVAILABILITY GROUP, CONNECT SQL and VIEW SERVER STATE \
         permissions for [NT AUTHORITY\\SYSTEM]."
    } else {
        ""
    };
    Outcome::Fail(
        Evidence::new(
            "SERVERPROPERTY('IsHadrEnabled') is 0: Always On availability groups are off",
        )
        .with("IsHadrEnabled", 0),
        Fix::action(format!(
            "Enable Always On availability groups (SQL Server Configuration Manager, \
             `Enable-SqlAlwaysOn`, or `mssql-conf set hadr.hadrenabled 1` on Linux) and restart \
             the service.{wsfc}"
        )),
    )
}

const LINK_TRACE_FLAGS: Rule = rule!(
    "Link.TraceFlags",
    Warning,
    Instance,
    "Trace flags 1800 and 9567 are on",
    F13,
    "DBCC TRACESTATUS(-1)",
    Instance(link_trace_flags)
);
fn link_trace_flags(ctx: &Context<'_>) -> Outcome {
    let missing: Vec<LinkTraceFlag> = [
        LinkTraceFlag::LogIoSectorSize,
        LinkTraceFlag::SeedingCompression,
    ]
    .into_iter()
    .filter(|f| !ctx.instance.trace_flag_on(f.number()))
    .collect();
    let Some(batch) = remediation::trace_on_global(&missing) else {
        return Outcome::Pass;
    };
    let numbers = list(missing.iter().map(|f| f.number().to_string()));
    Outcome::Fail(
        Evidence::new(format!("trace flag(s) {numbers} are not on globally"))
            .with("missing", &numbers),
        Fix::sql(&[batch]).with_note(
            "DBCC TRACEON lasts until the next restart; also add the -T startup parameters \
             (SQL Server Configuration Manager, or `mssql-conf traceflag` on Linux). 1800 matters \
             when the log disks' sector sizes differ (512 B vs 4 KB); 9567 compresses seeding.",
        ),
    )
}

const MASTER_KEY: Rule = rule!(
    "Link.MasterKey",
    Warning,
    Instance,
    "Database master key exists in master",
    F13,
    "master.sys.symmetric_keys (id 101)",
    Instance(master_key)
);
fn master_key(ctx: &Context<'_>) -> Outcome {
    if ctx.instance.master_key_present {
        return Outcome::Pass;
    }
    // The builder redacts the password in everything but the text sent to the server, so the
    // report shows N'***' whatever is passed here.
    let batch = create_master_key(&Secret::new("<strong password>"));
    Outcome::Fail(
        Evidence::new("master has no database master key (symmetric_key_id 101)"),
        Fix::sql(&[batch]).with_note(
            "milink creates the key while preparing SQL Server. To do it yourself, replace \
             N'***' with a strong password and keep that password in your secret store.",
        ),
    )
}

const ENDPOINT_MISSING: Rule = rule!(
    "Link.EndpointMissing",
    Info,
    Instance,
    "Database mirroring endpoint exists",
    F15,
    "sys.database_mirroring_endpoints",
    Instance(endpoint_missing)
);
fn endpoint_missing(ctx: &Context<'_>) -> Outcome {
    if !ctx.instance.endpoints.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new("no DATABASE_MIRRORING endpoint exists"),
        Fix::action(
            "milink creates a certificate-authenticated, AES-encrypted endpoint on TCP 5022 while \
             preparing SQL Server.",
        ),
    )
}

const ENDPOINT: Rule = rule!(
    "Link.Endpoint",
    Blocker,
    Instance,
    "Endpoint uses certificate auth and AES, and is started",
    F15,
    "sys.database_mirroring_endpoints",
    Instance(endpoint)
);
fn endpoint(ctx: &Context<'_>) -> Outcome {
    let Some(e) = ctx.instance.endpoints.first() else {
        return Outcome::Pass;
    };
    let mut problems = Vec::new();
    if !e.uses_certificate() {
        problems.push(format!(
            "authentication is {} (no certificate)",
            e.authentication
        ));
    }
    if !e.encryption_enabled {
        problems.push("encryption is disabled".to_owned());
    }
    if !e.allows_aes() {
        problems.push(format!("algorithm is {} (no AES)", e.algorithm));
    }
    if e.state != crate::assess::facts::EndpointState::Started {
        problems.push(format!("state is {:?}", e.state).to_uppercase());
    }
    if problems.is_empty() {
        return Outcome::Pass;
    }
    let evidence = Evidence::new(format!("endpoint {}: {}", e.name, problems.join("; ")))
        .with("endpoint", &e.name)
        .with("authentication", &e.authentication)
        .with("encryption enabled", e.encryption_enabled)
        .with("algorithm", &e.algorithm)
        .with("state", format!("{:?}", e.state))
        .with("port", e.port);
    let auth = e.authentication.to_ascii_uppercase();
    let spec = (|| {
        Some(MirroringEndpointSpec {
            name: EndpointName::new(e.name.as_str()).ok()?,
            port: TcpPort::new(e.port).ok()?,
            certificate: CertificateName::new(e.certificate.clone()?).ok()?,
            auth: if ["NEGOTIATE", "NTLM", "KERBEROS"]
                .iter()
                .any(|w| auth.contains(w))
            {
                EndpointAuth::WindowsNegotiateCertificate
            } else {
                EndpointAuth::Certificate
            },
            encryption: if e.algorithm.to_ascii_uppercase().contains("RC4") {
                EndpointEncryption::AesRc4
            } else {
                EndpointEncryption::Aes
            },
        })
    })();
    let fix = match spec {
        Some(spec) => Fix::sql(&[alter_mirroring_endpoint(&spec)]).with_note(
            "Keeps Windows authentication and RC4 only where the endpoint already uses them \
             (other availability groups may); the link itself needs the certificate and AES.",
        ),
        None => Fix::action(format!(
            "The endpoint has no certificate: milink creates the endpoint certificate while \
             preparing SQL Server, then alters [{}] to STATE = STARTED, AUTHENTICATION = … \
             CERTIFICATE [<endpoint certificate>], ENCRYPTION = REQUIRED ALGORITHM AES.",
            e.name
        )),
    };
    Outcome::Fail(evidence, fix)
}

fn link_certificates<'a>(ctx: &'a Context<'_>) -> Vec<&'a crate::assess::facts::CertificateFact> {
    let mut names: Vec<String> = ctx
        .instance
        .endpoints
        .iter()
        .filter_map(|e| e.certificate.clone())
        .collect();
    if let Some(t) = ctx.target {
        names.push(t.fqdn.as_str().to_owned());
    }
    let mut certs: Vec<_> = names
        .iter()
        .filter_map(|n| ctx.instance.certificate(n))
        .collect();
    certs.dedup_by(|a, b| a.name == b.name);
    certs
}

const CERTIFICATE_EXPIRED: Rule = rule!(
    "Link.CertificateExpired",
    Blocker,
    Instance,
    "Link certificates are valid",
    F14,
    "expiry of the endpoint certificate and of the certificate named after the managed instance's FQDN",
    Instance(certificate_expired)
);
fn certificate_expired(ctx: &Context<'_>) -> Outcome {
    let now = ctx.options.now;
    let expired: Vec<_> = link_certificates(ctx)
        .into_iter()
        .filter(|c| c.expiry <= now)
        .collect();
    if expired.is_empty() {
        return Outcome::Pass;
    }
    let mut ev = Evidence::new(format!(
        "expired: {}",
        list(expired.iter().map(|c| c.name.as_str()))
    ));
    for c in &expired {
        ev = ev.with(&format!("{} expiry", c.name), c.expiry.date());
    }
    Outcome::Fail(
        ev,
        Fix::action(
            "Rotate the certificate: create a new endpoint certificate, upload its public key to \
             the managed instance as a server trust certificate, ALTER ENDPOINT … AUTHENTICATION \
             = CERTIFICATE [new], then delete the old trust certificate. For the managed \
             instance's certificate, import the current one from endpointCertificates.",
        ),
    )
}

const CERTIFICATE_EXPIRING: Rule = rule!(
    "Link.CertificateExpiring",
    Warning,
    Instance,
    "Link certificates don't expire soon",
    F14,
    "the same certificates, against the warning window",
    Instance(certificate_expiring)
);
fn certificate_expiring(ctx: &Context<'_>) -> Outcome {
    let now = ctx.options.now;
    let horizon = now.plus(std::time::Duration::from_secs(
        u64::from(ctx.options.certificate_warning_days) * 86_400,
    ));
    let soon: Vec<_> = link_certificates(ctx)
        .into_iter()
        .filter(|c| c.expiry > now && c.expiry <= horizon)
        .collect();
    if soon.is_empty() {
        return Outcome::Pass;
    }
    let mut ev = Evidence::new(format!(
        "expiring within {} days: {}",
        ctx.options.certificate_warning_days,
        list(soon.iter().map(|c| c.name.as_str()))
    ));
    for c in &soon {
        ev = ev.with(&format!("{} expiry", c.name), c.expiry.date());
    }
    Outcome::Fail(
        ev,
        Fix::action(
            "Plan the rotation before the expiry date: an expired certificate breaks the link.",
        ),
    )
}

const ROOT_CA_TRUST: Rule = rule!(
    "Link.RootCaTrust",
    Warning,
    Instance,
    "Azure root CAs are trusted",
    F14,
    "certificates in master named MicrosoftPKI / DigiCertPKI or with their subjects; the issuer registration itself is not visible in a catalog view",
    Instance(root_ca_trust)
);
fn root_ca_trust(ctx: &Context<'_>) -> Outcome {
    let missing: Vec<String> = azure_root_cas()
        .into_iter()
        .filter(|(name, subject)| {
            !ctx.instance
                .certificates
                .iter()
                .any(|c| c.name.eq_ignore_ascii_case(name.as_str()) || c.subject.contains(subject))
        })
        .map(|(name, _)| name.to_string())
        .collect();
    if missing.is_empty() {
        return Outcome::Pass;
    }
    Outcome::Fail(
        Evidence::new(format!(
            "master does not hold the Azure root CA certificate(s) {}",
            list(&missing)
        ))
        .with("missing", list(&missing)),
        Fix::action(
            "milink imports them while exchanging trust (CREATE CERTIFICATE … FROM BINARY and \
             sp_certificate_add_issuer for N'*.database.windows.net'); the certificate blobs \
             come from the Azure Certificate Authority details page or the Arc download.",
        ),
    )
}
