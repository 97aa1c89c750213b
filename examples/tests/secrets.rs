//! No secret anywhere: the whole lab runs over the wire with recognizable secrets (both SQL
//! logins' passwords, the ARM token, the master key password, and the application's connection
//! string password), crashes and is continued, and every place a secret could leak is scanned:
//! the narration, the report (JSON and Debug), every file the run wrote (journal, the saved
//! world of the interrupted run), the plan, every tracing event and span of the process, and the
//! Display and Debug of the errors a wrong password and a wrong token give.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use milink_core::arm::client::{ArmManagedInstance, ArmOptions};
use milink_core::lifecycle::Side;
use milink_core::ports::ManagedInstance;
use milink_core::secret::Secret;
use milink_core::sim::Lab;
use milink_core::sim::arm_https::{ArmHttpsServer, ArmServerConfig};
use milink_core::sim::sql::handler::SimSqlHandler;
use milink_core::sim::tds::{TdsServer, TdsServerConfig};
use milink_core::sqlserver::SqlServerAdapter;
use milink_core::sqlserver::connection::{ConnectOptions, Connection, Encryption};
use milink_core::sqlserver::render::RenderContext;
use milink_core::time::SystemTimer;
use milink_examples::config::StaticToken;
use milink_examples::tailspin::{LabSecrets, Options, run_with_secrets, sidecar};

const SQL_PASSWORD: &str = "S3cr3t-PASSWORD-canary";
const MI_PASSWORD: &str = "Mi-S3cr3t-canary-PW";
const ARM_TOKEN: &str = "tok-CANARY-123";
const MASTER_KEY_PASSWORD: &str = "MasterKey-CANARY-9x!";
/// The lab application's connection string password (`app::ORIGINAL_CONNECTION_STRING`).
const CONNECTION_PASSWORD: &str = "lab-only;P@ss=word";

const CANARIES: [&str; 5] = [
    SQL_PASSWORD,
    MI_PASSWORD,
    ARM_TOKEN,
    MASTER_KEY_PASSWORD,
    CONNECTION_PASSWORD,
];

/// Every tracing event and span of the process, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }
}

struct Subscriber {
    text: Captured,
    next: std::sync::atomic::AtomicU64,
}

impl tracing::Subscriber for Subscriber {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut text = self.text.0.lock().unwrap();
        let _ = write!(text, "\nspan {}", span.metadata().name());
        span.record(&mut Fields(&mut text));
        tracing::span::Id::from_u64(
            self.next
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .max(1),
        )
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Fields(&mut self.text.0.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut text = self.text.0.lock().unwrap();
        let _ = write!(
            text,
            "\n{} {}",
            event.metadata().level(),
            event.metadata().target()
        );
        event.record(&mut Fields(&mut text));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn tracing_capture() -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let text = Captured::default();
            tracing::subscriber::set_global_default(Subscriber {
                text: text.clone(),
                next: std::sync::atomic::AtomicU64::new(1),
            })
            .unwrap();
            text
        })
        .clone()
}

#[derive(Clone, Default)]
struct Out(Arc<Mutex<Vec<u8>>>);

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Out {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn secrets() -> LabSecrets {
    LabSecrets {
        sql_password: Secret::new(SQL_PASSWORD),
        mi_password: Secret::new(MI_PASSWORD),
        arm_token: Secret::new(ARM_TOKEN),
        master_key_password: Some(Secret::new(MASTER_KEY_PASSWORD)),
    }
}

/// Where each canary was found in `text` (the place is named in the result).
fn leaks(place: &str, text: &str, found: &mut Vec<String>) {
    for canary in CANARIES {
        // The connection string password also appears quoted or with its `;` escaped.
        let needles = [canary.to_owned(), canary.replace(';', ";;")];
        let mut needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        needles.push(canary.split(';').next().unwrap_or(canary));
        if needles.iter().any(|n| text.contains(n)) {
            found.push(format!("{canary:?} in {place}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_output_reports_journals_plans_logs_or_errors() {
    let traced = tracing_capture();
    let dir = tempfile::tempdir().unwrap();
    let mut found = Vec::new();
    let options = |args: &[&str]| {
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        args.extend(["--journal-dir".into(), dir.path().display().to_string()]);
        Options::parse(&args).unwrap()
    };

    // The whole lab over the wire, interrupted and continued, with failback.
    let out = Out::default();
    let crashed = run_with_secrets(
        &options(&["--wire", "--failback", "--seed", "4", "--crash-after", "60"]),
        Box::new(out.clone()),
        secrets(),
    )
    .await
    .unwrap();
    assert_eq!(crashed.outcome, "crashed");
    let journal = crashed.journal.clone().unwrap();
    assert!(sidecar(std::path::Path::new(&journal)).exists());
    let resumed = run_with_secrets(
        &options(&["--wire", "--resume", &journal]),
        Box::new(out.clone()),
        secrets(),
    )
    .await
    .unwrap();
    assert_eq!(resumed.outcome, "completed");
    assert!(resumed.parity.iter().all(|p| p.all_match));
    // The plan.
    let plan = Out::default();
    run_with_secrets(&options(&["--plan"]), Box::new(plan.clone()), secrets())
        .await
        .unwrap();

    leaks("the narration", &out.text(), &mut found);
    leaks("the plan", &plan.text(), &mut found);
    for report in [&crashed, &resumed] {
        leaks(
            "the JSON report",
            &serde_json::to_string(report).unwrap(),
            &mut found,
        );
        leaks("the report's Debug", &format!("{report:?}"), &mut found);
    }
    leaks(
        "the secrets' Debug",
        &format!("{:?}", secrets()),
        &mut found,
    );

    // Every file the runs wrote. The application's own connection string file is where its
    // password belongs: it is there (so the scan can see it) and nowhere else.
    let connection_file = resumed.redirect.connection_file.clone().unwrap();
    let mut files = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        if path.display().to_string() == connection_file {
            assert!(text.contains(CONNECTION_PASSWORD), "{text}");
            continue;
        }
        files += 1;
        leaks(&path.display().to_string(), &text, &mut found);
    }
    assert!(
        files >= 3,
        "the journal, the saved world, certificates: {files}"
    );

    // A wrong password and a wrong token: their errors name the login and the request, not the
    // secret that was tried.
    let lab = Lab::tailspin(4).unwrap();
    let handler = Arc::new(SimSqlHandler::new(
        lab.sim.clone(),
        Side::SqlServer,
        "milink",
        Secret::new("Another-Passw0rd!"),
    ));
    let server = TdsServer::start(TdsServerConfig::default(), handler)
        .await
        .unwrap();
    let ca = dir.path().join("wrong-password.der");
    std::fs::write(&ca, server.certificate_der()).unwrap();
    let connect = ConnectOptions::builder("127.0.0.1")
        .port(server.addr().port())
        .sql_login("milink", Secret::new(SQL_PASSWORD))
        .encryption(Encryption::Mandatory)
        .trusted_ca(ca)
        .build()
        .unwrap();
    leaks(
        "the connect options' Debug",
        &format!("{connect:?}"),
        &mut found,
    );
    let adapter = SqlServerAdapter::new(
        Connection::new(connect, Arc::new(SystemTimer)),
        RenderContext::with_password(Some(Secret::new(MASTER_KEY_PASSWORD))).unwrap(),
    );
    let e = adapter.check_can_host_link().await.unwrap_err();
    leaks("a failed login's error", &format!("{e} {e:?}"), &mut found);

    let arm = ArmHttpsServer::start(
        ArmServerConfig::with_token(Secret::new("another-token")),
        lab.sim.clone(),
    )
    .await
    .unwrap();
    let client = ArmManagedInstance::new(
        lab.spec.target.instance.clone(),
        Arc::new(StaticToken::new(Secret::new(ARM_TOKEN))),
        ArmOptions::builder()
            .endpoint(arm.base_url())
            .trust_root_der(arm.certificate_der().to_vec())
            .build(),
    )
    .unwrap();
    let e = client.link_state(&lab.spec.link).await.unwrap_err();
    assert!(e.to_string().contains("401"), "{e}");
    leaks("a refused token's error", &format!("{e} {e:?}"), &mut found);

    let logs = traced.0.lock().unwrap().clone();
    assert!(logs.lines().count() > 10, "the run was traced: {logs}");
    leaks("the tracing events and spans", &logs, &mut found);

    // The scan sees a secret where there is one.
    let mut planted = Vec::new();
    leaks("a planted line", &format!("x {ARM_TOKEN} y"), &mut planted);
    assert_eq!(planted.len(), 1);

    assert!(found.is_empty(), "secrets leaked: {found:#?}");
}
