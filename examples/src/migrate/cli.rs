//! The command line of `migrate` (clap, derive).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// What `--help` says after the options: the exit codes and where secrets come from.
const AFTER_HELP: &str = "\
Without a command, migrate assesses the pair and prints the plan of a link; it changes
nothing. A command that changes something (start, failover, failback, cutover, cancel,
resume) only prints what it would do unless --execute is given.

Secrets never come from flags: the passwords and the ARM token are read from the environment
variables the configuration names (prompted for on a terminal when unset). The master key
password, if you want to choose it, comes from MILINK_MASTER_KEY_PASSWORD.

Every operation journals to the link's journal (--journal, [link] journal, or <link>.journal
next to the configuration); resume continues the last operation from it.

Exit codes:
  0  done (or nothing to do)
  1  failed: the link stopped in a failure that resume alone will not fix
  2  usage: bad flags or configuration
  3  not ready: the assessment found blockers for the link's databases
  4  refused: the link (or milink) refused the command, or clients still use the link's
     databases before a role change; nothing was changed
  5  failed, retryable: run `migrate --execute resume` to continue";

/// Migrates SQL Server databases to Azure SQL Managed Instance over the Managed Instance link.
#[derive(Debug, Parser)]
#[command(
    name = "migrate",
    version,
    about = "Migrates SQL Server databases to Azure SQL Managed Instance over the Managed Instance link.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// The link's configuration file (TOML).
    #[arg(
        long,
        short,
        env = "MILINK_CONFIG",
        default_value = "milink.toml",
        global = true
    )]
    pub config: PathBuf,
    /// The link's journal file (overrides the configuration's).
    #[arg(long, env = "MILINK_JOURNAL", global = true)]
    pub journal: Option<PathBuf>,
    /// Change something: without it, commands only assess and print what they would do.
    #[arg(long, global = true)]
    pub execute: bool,
    /// SQL Server's host (overrides the configuration's).
    #[arg(long, env = "MILINK_SQL_HOST", global = true)]
    pub sql_host: Option<String>,
    /// SQL Server's TCP port (overrides the configuration's).
    #[arg(long, env = "MILINK_SQL_PORT", global = true)]
    pub sql_port: Option<u16>,
    /// SQL Server's login (overrides the configuration's; its password stays in the
    /// environment).
    #[arg(long, env = "MILINK_SQL_USER", global = true)]
    pub sql_user: Option<String>,
    /// The managed instance's resource id (overrides the configuration's).
    #[arg(long, env = "MILINK_MANAGED_INSTANCE", global = true)]
    pub managed_instance: Option<String>,
    /// The link's name (overrides the configuration's).
    #[arg(long, env = "MILINK_LINK", global = true)]
    pub link: Option<String>,
    /// Where the managed instance reaches SQL Server's mirroring endpoint (overrides the
    /// configuration's).
    #[arg(long, env = "MILINK_ENDPOINT_HOST", global = true)]
    pub endpoint_host: Option<String>,
    /// Fail over, fail back or cut over even while clients use the link's databases on the
    /// primary (their writes after the last reading would be lost or refused).
    #[arg(long, global = true)]
    pub allow_active_workload: bool,
    /// Plain lines, no progress bar or in-place refresh, even on a terminal.
    #[arg(long, global = true)]
    pub plain: bool,
    /// What to do (default: assess and print the plan).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Read both sides and assess the link's databases (read-only).
    Assess,
    /// Print every T-SQL batch and ARM request of a journey (read-only).
    Plan {
        /// The journey: create, failover, failback or cutover.
        #[arg(long, default_value = "failover")]
        journey: String,
    },
    /// Assess, then create the link and wait until it replicates.
    Start,
    /// Where the link is: state, primary, LSNs, lag, seeding, ETA, certificate expiry.
    Status {
        /// Keep reading, refreshed in place on a terminal (plain lines otherwise).
        #[arg(long)]
        watch: bool,
        /// Seconds between readings with --watch.
        #[arg(long, default_value_t = 5.0)]
        interval: f64,
        /// Stop after this many readings with --watch (default: until Ctrl-C).
        #[arg(long)]
        count: Option<u64>,
    },
    /// Fail over to the managed instance (planned: no data loss).
    Failover {
        /// A forced failover (possible data loss); needs --accept-data-loss LINKNAME.
        #[arg(long)]
        force: bool,
        /// The link's name, typed again, to accept the loss of data a forced failover may cause.
        #[arg(long, value_name = "LINKNAME")]
        accept_data_loss: Option<String>,
    },
    /// Fail back to SQL Server (two-way links).
    Failback,
    /// Migrate for good: wait for the instance's first full backup, then remove the link.
    Cutover {
        /// Also drop the availability group on SQL Server (the databases stay).
        #[arg(long)]
        drop_availability_group: bool,
    },
    /// Undo the link's creation.
    Cancel,
    /// Continue the last operation after an interruption or a retryable failure.
    Resume,
}

impl Command {
    /// The command changes the link (and so needs `--execute`).
    pub fn changes_something(&self) -> bool {
        !matches!(
            self,
            Command::Assess | Command::Plan { .. } | Command::Status { .. }
        )
    }
}
