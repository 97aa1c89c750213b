//! The lab's command line: its options, how they are parsed, and the usage text.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The command line.
pub const USAGE: &str = "\
usage: tailspin [--seed N] [--plan] [--failback | --cutover] [--crash-after RECORD]
                [--resume JOURNAL] [--json] [--journal-dir DIR] [--wire]

  --seed N              seed of the simulated world (default 1); the same seed gives the same run
  --plan                print the plan: every T-SQL batch and ARM request, by state; nothing runs
  --failback            after the failover, fail back to SQL Server
  --cutover             one-way migration: the link ends removed and the DAG dropped
  --crash-after RECORD  stop the orchestrator right after journal record RECORD (>= 1)
  --resume JOURNAL      continue an interrupted run from its journal
  --json                print only one JSON document (verdicts, phases, failover, parity, journal)
  --journal-dir DIR     where journals are written (default: the system temp dir)
  --wire                drive SQL Server through the real adapter over TDS and the managed
                        instance through the real ARM adapter over HTTPS (loopback, TLS) to the
                        simulator, instead of calling it in process";

/// Parsed command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// World seed.
    pub seed: u64,
    /// Plan mode.
    pub plan: bool,
    /// Fail back after the failover.
    pub failback: bool,
    /// One-way cutover instead of a failover.
    pub cutover: bool,
    /// Crash after this journal record.
    pub crash_after: Option<u64>,
    /// Resume from this journal.
    pub resume: Option<PathBuf>,
    /// JSON output only.
    pub json: bool,
    /// Where journals go.
    pub journal_dir: PathBuf,
    /// SQL Server over TDS instead of in process.
    #[serde(default)]
    pub wire: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 1,
            plan: false,
            failback: false,
            cutover: false,
            crash_after: None,
            resume: None,
            json: false,
            journal_dir: std::env::temp_dir().join("milink-tailspin"),
            wire: false,
        }
    }
}

impl Options {
    /// Parses the arguments after the program name.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match a.as_str() {
                "--seed" => {
                    o.seed = value("--seed")?
                        .parse()
                        .map_err(|_| "--seed takes a number".to_string())?;
                }
                "--plan" => o.plan = true,
                "--failback" => o.failback = true,
                "--cutover" => o.cutover = true,
                "--json" => o.json = true,
                "--wire" => o.wire = true,
                "--crash-after" => {
                    let n: u64 = value("--crash-after")?
                        .parse()
                        .map_err(|_| "--crash-after takes a journal record number".to_string())?;
                    if n == 0 {
                        return Err(
                            "--crash-after counts from 1 (record 1 creates the link's journal)"
                                .into(),
                        );
                    }
                    o.crash_after = Some(n);
                }
                "--resume" => o.resume = Some(PathBuf::from(value("--resume")?)),
                "--journal-dir" => o.journal_dir = PathBuf::from(value("--journal-dir")?),
                "-h" | "--help" => return Err(USAGE.to_string()),
                other => return Err(format!("unknown argument {other}\n\n{USAGE}")),
            }
        }
        if o.failback && o.cutover {
            return Err(
                "--failback and --cutover exclude each other: a cutover removes the link".into(),
            );
        }
        if o.plan && (o.crash_after.is_some() || o.resume.is_some()) {
            return Err("--plan runs nothing, so it cannot crash or resume".into());
        }
        Ok(o)
    }
}
