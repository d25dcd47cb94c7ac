//! `donghanh`: parse the command line, read the configuration, start logging, run the
//! command. A configuration fault is one line on stderr naming the variable, exit code 2;
//! so is a refusal of `backup` or `restore`, and a backup that fails verification.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use migrations::{Migrator, MigratorTrait};
use server::config::DataLayout;
use server::ops::{self, OpsError};
use server::services::accounts;
use server::{AppState, Config};
use shared_models::{Role, TeamKind};

/// mimalloc instead of glibc's malloc: intake allocates and frees many small buffers
/// (JSON, query strings, rows) on every request, and glibc's malloc/free were ~7 % of
/// the machine's samples under load (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "donghanh",
    version,
    about = "Đồng Hành: the backend for harm-reduction field work"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (applies pending migrations; creates a first admin if there is no user).
    Serve {
        /// Address to listen on; overrides BIND_ADDR (default 127.0.0.1:8080).
        #[arg(long)]
        bind: Option<SocketAddr>,
    },
    /// Apply pending database migrations, roll back, or show their status.
    Migrate {
        #[arg(value_enum, default_value_t = Direction::Up)]
        direction: Direction,
        /// With `down`: how many migrations to roll back (default 1).
        #[arg(long)]
        steps: Option<u32>,
    },
    /// Create an admin account at the city level and print its password once.
    CreateAdmin {
        #[arg(long)]
        username: String,
    },
    /// Create demo teams and one user per role in Đống Đa and Hoàn Kiếm (passwords printed once).
    SeedDemo,
    /// Remove stored photos that have no record (left by a crash between the two writes)
    /// and are older than PHOTO_SWEEP_GRACE_SECS. Safe beside running servers.
    SweepPhotos,
    /// Mark referrals not completed within REFERRAL_EXPIRY_DAYS as expired. Safe beside
    /// running servers (they do it hourly too).
    ExpireReferrals,
    /// Recompute the indicators report's cells from the approved data. Servers keep the
    /// cells as they approve and reopen, and rebuild them at start when their layout
    /// changed; this is for repairs. With --check, only compare and list the cells that
    /// differ (exit status 1 if any).
    RebuildReports {
        #[arg(long)]
        check: bool,
    },
    /// Copy the embedded default (a snapshot of the database, the photos it names, the
    /// keys, and a manifest written last) into a new or empty DIR; safe while the server
    /// runs. With --verify DIR instead, check such a copy without the server (exit
    /// status 2 and each problem named if anything is wrong).
    Backup {
        /// The directory to write the backup into (new, or empty).
        #[arg(
            long,
            value_name = "DIR",
            required_unless_present = "verify",
            conflicts_with = "verify"
        )]
        to: Option<PathBuf>,
        /// Check the backup in DIR instead of making one.
        #[arg(long, value_name = "DIR")]
        verify: Option<PathBuf>,
    },
    /// Rebuild an empty data directory (DATA_DIR) from a backup, after verifying it;
    /// then `donghanh serve` starts on it.
    Restore {
        /// The backup directory.
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
    },
    /// Move the embedded default (DATA_DIR, its server stopped) into an empty PostgreSQL
    /// database and, with --to-s3, the bucket the S3_* settings name: every row and
    /// photo, verified; run it again to resume a move that was cut off. Prints what
    /// the new servers must be given (where the keys are, never the keys).
    Move {
        /// The target database: a postgres:// URL of a new, empty database.
        #[arg(long, value_name = "POSTGRES_URL")]
        to_database: String,
        /// Copy the photos into the S3 bucket given by S3_ENDPOINT, S3_REGION,
        /// S3_BUCKET, S3_PREFIX, S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY (the
        /// settings the new servers use); without it the photos stay in the disk
        /// blob store, checked.
        #[arg(long)]
        to_s3: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Direction {
    Up,
    Down,
    Status,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = match server::config::log_format_from_env() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("donghanh: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("donghanh: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Backups, restores and moves read the data directory's layout first and must not
    // create anything in it (`Config::from_env` generates missing key files).
    if let Command::Backup { .. } | Command::Restore { .. } | Command::Move { .. } = cli.command {
        server::telemetry::init(log_format);
        return match runtime.block_on(run_ops(cli.command)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => report_ops_error(&e),
        };
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("donghanh: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    server::telemetry::init(config.log_format);
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<OpsError>() {
            Some(ops_error) => report_ops_error(ops_error),
            None => {
                tracing::error!(error = format!("{e:#}"), "donghanh failed");
                eprintln!("donghanh: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// One line per problem, then the fault; exit status 2 for what the operator must act on.
fn report_ops_error(e: &OpsError) -> ExitCode {
    for problem in e.problems() {
        eprintln!("donghanh: {problem}");
    }
    eprintln!("donghanh: {e}");
    ExitCode::from(e.exit_code())
}

/// `backup`, `restore` and `move`.
async fn run_ops(command: Command) -> Result<(), OpsError> {
    let layout = || {
        DataLayout::from_env().map_err(|e| OpsError::Refused(format!("configuration error: {e}")))
    };
    match command {
        Command::Backup {
            verify: Some(dir), ..
        } => {
            let verified = ops::verify::verify(&dir).await?;
            for warning in &verified.warnings {
                eprintln!("donghanh: warning: {warning}");
            }
            let m = &verified.manifest;
            println!(
                "backup {} is whole: {}, {} objects ({}), schema {}, taken {} by donghanh {}",
                dir.display(),
                ops::backup::summary(&m.tables),
                m.objects.len(),
                megabytes(m.object_bytes()),
                m.schema_version,
                m.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                m.tool_version
            );
        }
        Command::Backup { to: Some(dir), .. } => {
            ops::backup::preflight(&layout()?, &dir)?;
            let config = Config::from_env()
                .map_err(|e| OpsError::Refused(format!("configuration error: {e}")))?;
            let report = ops::backup::run(&config, &dir).await?;
            let m = &report.manifest;
            println!(
                "backup written to {}: {}, {} objects ({}), schema {}",
                dir.display(),
                ops::backup::summary(&m.tables),
                m.objects.len(),
                megabytes(m.object_bytes()),
                m.schema_version
            );
            println!(
                "database snapshot {:.1} s, whole backup {:.1} s; check it with `donghanh backup --verify {}`",
                report.snapshot_secs,
                report.total_secs,
                dir.display()
            );
        }
        Command::Restore { from } => {
            let layout = layout()?;
            let restored = ops::restore::run(&layout, &from).await?;
            let m = &restored.manifest;
            println!(
                "restored {} (taken {}) into {}: {}, {} objects",
                from.display(),
                m.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                layout.data_dir.display(),
                ops::backup::summary(&m.tables),
                m.objects.len()
            );
            println!("start the server with `donghanh serve`");
        }
        Command::Move { to_database, to_s3 } => {
            let source = ops::move_data::Source::from_env(layout()?)?;
            let _no_server = ops::data_dir::lock_for_move(&source.layout)?;
            let target = ops::move_data::Target::from_env(&to_database, to_s3)?;
            let report = ops::move_data::run(&source, &target).await?;
            print!("{}", ops::move_data::next_steps(&source, &target, &report));
        }
        _ => return Err(OpsError::Refused("give --to DIR or --verify DIR".into())),
    }
    Ok(())
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

async fn run(command: Command, mut config: Config) -> anyhow::Result<()> {
    ops::data_dir::secure(&DataLayout::of(&config))?;
    match command {
        Command::Serve { bind } => {
            if let Some(bind) = bind {
                config.bind = bind;
            }
            let bind = config.bind;
            let _lock = ops::data_dir::lock_for_server(&DataLayout::of(&config))?;
            let state = AppState::build(config).await?;
            server::startup::prepare(&state).await?;
            if let Some((admin, password)) = accounts::ensure_first_admin(&state).await? {
                println!("First start: created admin account");
                println!("  username: {}", admin.username);
                println!("  password: {password}");
                println!("This password is shown only once; change it after logging in.");
                let base = state
                    .config
                    .public_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{bind}"));
                println!(
                    "Sign in to the console at {}/console/ (your own page, under your name at the top, changes the password).",
                    base.trim_end_matches('/')
                );
            }
            let listener = tokio::net::TcpListener::bind(bind).await?;
            tracing::info!(address = %listener.local_addr()?, "listening");
            let metrics = match state.config.metrics_addr {
                Some(addr) => {
                    let metrics = tokio::net::TcpListener::bind(addr)
                        .await
                        .map_err(|e| anyhow::anyhow!("METRICS_ADDR {addr}: {e}"))?;
                    tracing::info!(address = %addr, "serving /metrics");
                    Some(metrics)
                }
                None => None,
            };
            spawn_photo_sweeper(&state);
            spawn_referral_expiry(&state);
            server::serve_with_metrics(listener, metrics, state, shutdown_signal()).await?;
            tracing::info!("stopped");
        }
        Command::Migrate { direction, steps } => {
            let db = server::db::connect(&config.database_url).await?;
            match direction {
                Direction::Up => server::db::migrate_up(&config.database_url, &db).await?,
                Direction::Down => Migrator::down(&db, Some(steps.unwrap_or(1))).await?,
                Direction::Status => {
                    print!("{}", ops::schema::render(&ops::schema::status(&db).await?));
                }
            }
        }
        Command::CreateAdmin { username } => {
            let state = AppState::build(config).await?;
            let (user, password) =
                accounts::create_account(&state, &username, Role::Admin, None, None).await?;
            println!("created admin {}", user.username);
            println!("  password: {password}");
        }
        Command::SeedDemo => {
            let state = AppState::build(config).await?;
            server::startup::prepare(&state).await?;
            seed_demo(&state).await?;
        }
        Command::ExpireReferrals => {
            let state = AppState::build(config).await?;
            let n = server::services::referrals::expire(
                &state.db,
                state.config.referral_expiry_days,
                chrono::Utc::now().date_naive(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("expired {n} referrals");
        }
        Command::RebuildReports { check } => {
            let db = server::db::connect_and_migrate(&config.database_url).await?;
            let started = std::time::Instant::now();
            if check {
                let drift = server::services::rollup::verify(&db)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                for line in &drift {
                    println!("{line}");
                }
                if !drift.is_empty() {
                    anyhow::bail!("{} report cells differ from the approved data", drift.len());
                }
                println!(
                    "report cells match the approved data ({:.1} s)",
                    started.elapsed().as_secs_f64()
                );
            } else {
                server::services::rollup::rebuild(&db, true)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                println!(
                    "report cells rebuilt in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        Command::Backup { .. } | Command::Restore { .. } | Command::Move { .. } => {
            anyhow::bail!("backup, restore and move run without the server's configuration")
        }
        Command::SweepPhotos => {
            let grace = config.photo_sweep_grace;
            let state = AppState::build(config).await?;
            let report = server::services::photos::sweep_orphans(&state, grace)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "checked {} photo objects, removed {} orphans",
                report.objects, report.removed
            );
        }
    }
    Ok(())
}

/// Every server expires overdue referrals now and then (idempotent; see `expire`).
fn spawn_referral_expiry(state: &AppState) {
    let interval = state.config.referral_expiry_interval;
    if interval.is_zero() {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = server::services::referrals::expire(
                &state.db,
                state.config.referral_expiry_days,
                chrono::Utc::now().date_naive(),
            )
            .await
            {
                tracing::warn!(error = %e, "referral expiry failed");
            }
        }
    });
}

/// Every server sweeps orphaned photo objects now and then; several doing it at once is
/// safe (see `sweep_orphans`).
fn spawn_photo_sweeper(state: &AppState) {
    let interval = state.config.photo_sweep_interval;
    if interval.is_zero() {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match server::services::photos::sweep_orphans(&state, state.config.photo_sweep_grace)
                .await
            {
                Ok(r) if r.removed > 0 => {
                    tracing::info!(objects = r.objects, removed = r.removed, "photo sweep")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "photo sweep failed"),
            }
        }
    });
}

/// Demo data for trying the API: teams and one user per role in two districts.
async fn seed_demo(state: &AppState) -> anyhow::Result<()> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use server::db::entities::{org_units, teams, users};

    let mut team_ids = std::collections::HashMap::new();
    for (code, name, unit_code, kind) in [
        (
            "DD-PG1",
            "Nhóm đồng đẳng Đống Đa 1",
            "006",
            TeamKind::PeerGroup,
        ),
        (
            "DD-VT1",
            "Đội CTXHTN Đống Đa",
            "006",
            TeamKind::VolunteerTeam,
        ),
        (
            "HK-PG1",
            "Nhóm đồng đẳng Hoàn Kiếm 1",
            "002",
            TeamKind::PeerGroup,
        ),
    ] {
        let existing = teams::Entity::find()
            .filter(teams::Column::Code.eq(code))
            .one(&state.db)
            .await?;
        let id = match existing {
            Some(t) => t.id,
            None => {
                let unit = org_units::Entity::find()
                    .filter(org_units::Column::Code.eq(unit_code))
                    .one(&state.db)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("no org unit {unit_code}"))?;
                use sea_orm::{ActiveModelTrait, Set};
                teams::ActiveModel {
                    id: Set(uuid::Uuid::now_v7()),
                    org_unit_id: Set(unit.id),
                    code: Set(code.into()),
                    name: Set(name.into()),
                    kind: Set(kind.as_str().into()),
                    active: Set(true),
                    created_at: Set(chrono::Utc::now()),
                }
                .insert(&state.db)
                .await?
                .id
            }
        };
        team_ids.insert(code, id);
    }
    println!("Demo accounts (passwords shown once):");
    for (username, role, unit, team) in [
        ("demo.supervisor.dongda", Role::Supervisor, "006", None),
        ("demo.supervisor.hoankiem", Role::Supervisor, "002", None),
        (
            "demo.peer.dongda",
            Role::PeerEducator,
            "006",
            Some("DD-PG1"),
        ),
        (
            "demo.volunteer.dongda",
            Role::Volunteer,
            "006",
            Some("DD-VT1"),
        ),
        (
            "demo.peer.hoankiem",
            Role::PeerEducator,
            "002",
            Some("HK-PG1"),
        ),
    ] {
        let exists = users::Entity::find()
            .filter(users::Column::Username.eq(username))
            .one(&state.db)
            .await?
            .is_some();
        if exists {
            println!("  {username:<28} already exists");
            continue;
        }
        let team_id = team.and_then(|t| team_ids.get(t).copied());
        let (_, password) =
            accounts::create_account(state, username, role, Some(unit), team_id).await?;
        println!("  {username:<28} {:<14} {password}", role.as_str());
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down; draining in-flight requests");
}
