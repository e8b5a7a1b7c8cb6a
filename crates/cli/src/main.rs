//! `trellis`: the one binary. Subcommands live one per file.

mod audit;
mod bench;
mod dev;
mod esco_data;
mod eval;
mod eval_atomizer;
mod eval_matcher;
mod import;
mod privacy;
mod projections;
mod relay;
mod replay;
mod serve;

use anyhow::Context;
use clap::{Parser, Subcommand};
use trellis_store_postgres::{PgEventStore, PgStoreOptions};

/// Trellis: event-sourced career and learning development.
#[derive(Parser)]
#[command(name = "trellis", version)]
struct Cli {
    /// PostgreSQL holding the event store.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/trellis",
        global = true
    )]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply database migrations.
    Migrate,
    /// Tamper evidence: seal the log into hash chains and verify them (docs/auditing.md).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Benchmarks that print one JSON line per run.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Developer helpers: the dev Kafka broker, demo data and a live view of `$all`.
    #[command(subcommand)]
    Dev(dev::DevCommand),
    /// Run the relay, projectors and reactive services (single-node without KAFKA_BROKERS).
    Serve(serve::ServeArgs),
    /// Import reference data (ESCO skills) into an organization.
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Inspect and rebuild projections.
    #[command(subcommand)]
    Projections(projections::ProjectionsCommand),
    /// Personal data in events: encrypt what was appended before encryption (ADR 0017).
    #[command(subcommand)]
    Privacy(privacy::PrivacyCommand),
    /// Records the relay parked because the broker refused them for good: list and retry.
    #[command(subcommand)]
    Relay(relay::RelayCommand),
    /// Projections as of a past point into a schema, or a range republished to a topic, for
    /// audits (docs/auditing.md).
    Replay(replay::ReplayArgs),
    /// Offline evaluations (docs/recommendation.md).
    #[command(subcommand)]
    Eval(EvalCommand),
}

#[derive(Subcommand)]
enum EvalCommand {
    /// The IDP recommender against baselines on ESCO data, and skill-similarity AUC.
    Recommender(eval::EvalArgs),
    /// The atomizer's segmentation (Pk, WindowDiff) and prerequisites on Debian
    /// documentation, against baselines (docs/atomization.md).
    Atomizer(eval_atomizer::EvalAtomizerArgs),
    /// The cohort matcher on ESCO-based synthetic learners against greedy, random and (on
    /// tiny instances) the exact optimum (docs/matching.md).
    Matcher(eval_matcher::EvalMatcherArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRELLIS_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .json()
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Migrate => {
            let store = connect(&cli.database_url, 2).await?;
            trellis_api::migrate(&store, &trellis_contexts::modules())
                .await
                .context("migrating")?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Audit(command) => audit::run(&cli.database_url, command).await,
        Command::Bench(command) => bench::run(&cli.database_url, command).await,
        Command::Dev(command) => dev::run(&cli.database_url, command).await,
        Command::Serve(args) => serve::run(&cli.database_url, args).await,
        Command::Import(command) => import::run(&cli.database_url, command).await,
        Command::Projections(command) => projections::run(&cli.database_url, command).await,
        Command::Privacy(command) => privacy::run(&cli.database_url, command).await,
        Command::Relay(command) => relay::run(&cli.database_url, command).await,
        Command::Replay(args) => replay::run(&cli.database_url, args).await,
        Command::Eval(EvalCommand::Recommender(args)) => eval::run(args).await,
        Command::Eval(EvalCommand::Atomizer(args)) => eval_atomizer::run(&args),
        Command::Eval(EvalCommand::Matcher(args)) => eval_matcher::run(&args),
    }
}

/// Installs what every path that decodes stored events reads through: the modules'
/// upcasters (ADR 0011) and the personal-data cipher over the store's database, keyed by
/// `TRELLIS_MASTER_KEY` (and, during a rotation, `TRELLIS_PREVIOUS_MASTER_KEY`; ADR 0017).
///
/// # Errors
/// A missing or malformed master key.
fn install_readers(
    modules: &trellis_module::Modules,
    pool: &sqlx::PgPool,
    settings: &trellis_api::config::Settings,
) -> anyhow::Result<()> {
    modules.install_upcasters();
    modules.install_cipher(pool.clone(), master_key(settings)?);
    Ok(())
}

/// The configured master key: `TRELLIS_MASTER_KEY`, and `TRELLIS_PREVIOUS_MASTER_KEY` while
/// one is being rotated out (docs/security.md).
///
/// # Errors
/// A missing or malformed key.
fn master_key(
    settings: &trellis_api::config::Settings,
) -> anyhow::Result<trellis_privacy::MasterKey> {
    Ok(trellis_privacy::MasterKey::from_settings(
        settings.get("TRELLIS_MASTER_KEY"),
        settings.get("TRELLIS_PREVIOUS_MASTER_KEY"),
    )?)
}

/// Connects to the store with a pool of `connections`.
async fn connect(url: &str, connections: u32) -> anyhow::Result<PgEventStore> {
    let options = PgStoreOptions {
        max_connections: connections,
        ..PgStoreOptions::default()
    };
    PgEventStore::connect(url, options)
        .await
        .with_context(|| format!("connecting to PostgreSQL ({})", redact(url)))
}

/// A progress bar on stderr: `done` from 0 to 1, then `text` (a long command's feedback).
pub(crate) fn progress_bar(done: f64, text: &str) {
    let done = done.clamp(0.0, 1.0);
    let bar = "#".repeat((done * 30.0) as usize);
    eprint!("\r[{bar:<30}] {:>3.0}% {text}", done * 100.0);
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{}@{}", &url[..scheme + 3], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}
