//! The `recserve` command line: parses arguments and calls the library. Nothing else lives here.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use recserve::config::Config;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "recserve",
    version,
    about = "Two-stage recommendation service: train, evaluate, serve"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate a synthetic data set (generic CSV format) with planted structure.
    Generate {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 5_000)]
        users: usize,
        #[arg(long, default_value_t = 2_000)]
        items: usize,
        #[arg(long, default_value_t = 100_000)]
        interactions: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Feature strength against co-consumption strength: weak-features makes titles, brands,
        /// prices and demographics nearly uninformative and bundles stronger.
        #[arg(long, default_value = "default", value_parser = ["default", "weak-features"])]
        regime: String,
        /// Constant item interest over time (no popularity drift), as before item lifecycles.
        #[arg(long)]
        no_lifecycle: bool,
    },
    /// Train a model bundle from a data directory (generic CSV or MovieLens).
    Train {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Which interactions become the ranker's targets: the latest (temporal) or a random share.
        #[arg(long, value_parser = ["temporal", "random"])]
        ranker_holdout: Option<String>,
        #[arg(long)]
        seed: Option<u64>,
        /// Skip and count malformed data lines instead of failing.
        #[arg(long)]
        skip_bad_lines: bool,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Evaluate: split, train, measure the real pipeline, ablate, write a report.
    Evaluate(recserve::eval::cli::EvaluateArgs),
    /// Serve the HTTP API.
    Serve {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        bundle: Option<PathBuf>,
        #[arg(long)]
        addr: Option<String>,
    },
    /// Check a bundle the way `serve` does, without serving it.
    Validate {
        #[arg(long)]
        bundle: PathBuf,
    },
    /// Write the feedback event log as interactions.csv for retraining (and, with
    /// --impressions, impressions.csv: every shown item with its outcome and propensity).
    ExportEvents {
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
        /// interactions.csv keeps only events attributed to a served list.
        #[arg(long)]
        attributed_only: bool,
        /// Also write impressions.csv (shown, clicked, reward, propensity per shown item).
        #[arg(long)]
        impressions: bool,
        /// Read the whole fleet's events from the Redis stream (`state.redis.url`,
        /// `state.redis.key_prefix`) instead of this replica's local log.
        #[arg(long)]
        from_redis: bool,
    },
    /// Cut the event log at damage that start-up refused to skip (synced records were hit);
    /// the cut bytes are kept beside the segment. Run with the server stopped.
    RepairLog {
        /// The event log directory (`feedback.log.dir`).
        #[arg(long)]
        dir: PathBuf,
    },
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Generate {
            out,
            users,
            items,
            interactions,
            seed,
            regime,
            no_lifecycle,
        } => {
            let cfg = recserve::data::generate::GenerateConfig {
                users,
                items,
                interactions,
                seed,
                regime: regime.parse().map_err(anyhow::Error::msg)?,
                item_lifecycle: !no_lifecycle,
                ..Default::default()
            };
            let s = recserve::data::generate::generate(&cfg, &out)?;
            println!("{}", serde_json::to_string_pretty(&s)?);
        }
        Cmd::Train {
            data,
            out,
            config,
            ranker_holdout,
            seed,
            skip_bad_lines,
            quiet,
        } => {
            let cfg = Config::load(config.as_deref())?;
            let holdout = ranker_holdout
                .map(|h| h.parse())
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let opts = recserve::train::TrainOptions {
                data,
                out,
                holdout,
                seed,
                skip_bad_lines,
                quiet,
            };
            let s = recserve::train::train_dir(&opts, &cfg.train, &cfg.serving, &cfg.index)?;
            print_train_summary(&s);
        }
        Cmd::Evaluate(args) => {
            let cfg = Config::load(args.config.as_deref())?;
            recserve::eval::cli::run(&args, &cfg.evaluation())?
        }
        Cmd::Serve {
            config,
            bundle,
            addr,
        } => {
            let mut cfg = Config::load(config.as_deref())?;
            if let Some(b) = bundle {
                cfg.server.bundle = b;
            }
            if let Some(a) = addr {
                cfg.server.addr = a;
            }
            cfg.validate()?;
            let origin = cfg.locate_bundle()?;
            recserve::server::init_logging(&cfg.server.log_format);
            tracing::info!(bundle = %cfg.server.bundle.display(), found = origin.as_str(), "bundle");
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(cfg.server.async_worker_threads())
                .enable_all()
                .build()
                .context("starting the runtime")?;
            rt.block_on(async move {
                let app = recserve::server::Application::build(cfg.service()).await?;
                tracing::info!(addr = ?app.local_addr(), "listening");
                app.run_until_stopped(recserve::server::shutdown_signal())
                    .await?;
                anyhow::Ok(())
            })?;
        }
        Cmd::Validate { bundle } => {
            let m = recserve::bundle::Model::read(&bundle)?;
            println!(
                "ok: {} items, {} users, cf dim {}, content dim {}, ranker: {}, model version {}",
                m.n_items(),
                m.n_users(),
                m.cf_dim,
                m.content_dim,
                m.ranker_text.is_some(),
                m.manifest.model_version
            );
        }
        Cmd::RepairLog { dir } => {
            let cut = recserve::feedback::log::EventLog::repair(&dir)?;
            println!("{}", serde_json::json!({ "dir": dir, "bytes_cut": cut }));
        }
        Cmd::ExportEvents {
            out,
            config,
            attributed_only,
            impressions,
            from_redis,
        } => {
            let cfg = Config::load(config.as_deref())?;
            let opts = recserve::feedback::export::ExportOptions {
                attributed_only,
                impressions,
            };
            let s = if from_redis {
                let records = recserve::state::redis::export::stream_payloads(&cfg.state.redis)
                    .map_err(anyhow::Error::msg)?;
                recserve::feedback::export::export_payloads(
                    records,
                    &cfg.feedback,
                    &cfg.bandit.rewards,
                    &out,
                    opts,
                )
            } else {
                recserve::feedback::export::export_events(
                    &cfg.feedback,
                    &cfg.bandit.rewards,
                    &out,
                    opts,
                )
            }
            .map_err(anyhow::Error::msg)?;
            println!("{}", serde_json::to_string_pretty(&s)?);
        }
    }
    Ok(())
}

fn print_train_summary(s: &recserve::train::TrainSummary) {
    println!(
        "\nbundle {} (model {})",
        s.bundle.display(),
        s.model_version
    );
    println!(
        "data: {} users, {} items, {} interactions",
        s.users, s.items, s.interactions
    );
    for (phase, secs) in &s.phases {
        println!("  {phase:<30} {secs:>8.2} s");
    }
    let r = &s.ranker;
    println!(
        "ranker: {} trees; validation on {} held-out users:",
        s.ranker_best_iteration, r.users
    );
    println!(
        "  NDCG@10 ranker {:.4} | blend {:.4} | best single source {} {:.4}",
        r.ranker_ndcg, r.blend_ndcg, r.best_source, r.best_source_ndcg
    );
    for (src, v) in &r.source_ndcg {
        println!("  NDCG@10 {src:<8} {v:.4}");
    }
    println!(
        "  candidate recall (targets among merged candidates): {:.3}",
        r.candidate_recall
    );
    if let Some(v) = s.factorization_valid_recall {
        println!("factorization validation recall@10: {v:.4}");
    }
}
