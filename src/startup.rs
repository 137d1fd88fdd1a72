//! Wiring: database (external or private) → migrations → demo → state → router and workers
//! (the job loop, `crate::workers`; the SMTP listener) → serve until SIGINT/SIGTERM → drain →
//! stop the private cluster.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::config::{Config, mask_password};
use crate::core::time::{Clock, SystemClock};
use crate::db::cluster::{Cluster, ClusterOptions};
use crate::{db, demo, processes, web};

/// Where the database came from; a private cluster stops when this is dropped.
pub struct Database {
    pub pool: PgPool,
    pub cluster: Option<Cluster>,
}

impl Database {
    /// Closes the pool, then stops the private cluster (if any) and waits for it.
    pub async fn close(self) -> anyhow::Result<()> {
        self.pool.close().await;
        if let Some(cluster) = self.cluster {
            tokio::task::spawn_blocking(move || cluster.stop())
                .await
                .context("stopping PostgreSQL")??;
        }
        Ok(())
    }
}

/// Connects to `DATABASE_URL`, or starts the private cluster in the data folder.
pub async fn open_database(config: &Config) -> anyhow::Result<Database> {
    if let Some(url) = &config.database_url {
        let options = db::parse_url(url)?;
        let pool = db::connect(options, config.db_max_connections, &mask_password(url)).await?;
        return Ok(Database {
            pool,
            cluster: None,
        });
    }
    let options = ClusterOptions::new(&config.data_dir, "unitrack");
    let cluster = tokio::task::spawn_blocking(move || Cluster::start(&options))
        .await
        .context("starting PostgreSQL")??;
    tracing::info!(
        cluster = %cluster.root().display(),
        url = %cluster.display_url("unitrack"),
        "private PostgreSQL is running"
    );
    let display = cluster.display_url("unitrack");
    let pool = db::connect(
        cluster.connect_options("unitrack"),
        config.db_max_connections,
        &display,
    )
    .await?;
    Ok(Database {
        pool,
        cluster: Some(cluster),
    })
}

/// Binds the listen address, with a clear message when it is taken.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!(
                "{addr} is already in use by another program; stop it or set UNITRACK_LISTEN to another address (e.g. 127.0.0.1:8081)"
            )
        } else {
            anyhow::anyhow!("cannot listen on {addr}: {e}; set UNITRACK_LISTEN")
        }
    })
}

/// Binds the SMTP listen address, with a clear message when it fails.
async fn bind_smtp(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("cannot listen for SMTP on {addr}: {e}; set UNITRACK_SMTP_LISTEN to another address or unset it")
    })
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is called,
/// not when the future is first polled: a signal that arrives in between (say, right after
/// the banner) must stop the server cleanly, not kill the process with the default action.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
            match s {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(interrupt) => {},
            () = wait(terminate) => {},
        }
        tracing::info!("shutting down");
    }
}

/// `unitrack serve`: the whole server, from configuration to clean exit.
pub async fn run(config: Config, demo_flag: bool) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let private = config.database_url.is_none();
    let listener = bind(config.listen).await?;
    let database = open_database(&config).await?;
    let result = run_with(
        &config,
        &database.pool,
        listener,
        private || demo_flag || config.demo,
        started,
    )
    .await;
    database.close().await?;
    result
}

async fn run_with(
    config: &Config,
    pool: &PgPool,
    listener: TcpListener,
    load_demo: bool,
    started: std::time::Instant,
) -> anyhow::Result<()> {
    db::migrate(pool).await?;
    let clock = Arc::new(SystemClock);
    let mut conn = pool.begin().await?;
    let loaded = processes::ensure_defaults(&mut conn, clock.now()).await?;
    conn.commit().await?;
    if loaded > 0 {
        tracing::info!(loaded, "default processes loaded");
    }
    if load_demo && demo::load(pool, clock.now()).await? {
        tracing::info!("demo organisation loaded");
    }
    let show_demo = demo::is_loaded(pool).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let smtp = match config.smtp_listen {
        Some(addr) => {
            let listener = bind_smtp(addr).await?;
            tracing::info!(addr = %listener.local_addr()?, "SMTP listener is running");
            Some(tokio::spawn(crate::mail::smtp::serve(
                listener,
                pool.clone(),
                config.smtp_settings(),
                clock.clone(),
                stopped.clone(),
            )))
        }
        None => None,
    };
    let jobs = tokio::spawn(crate::workers::run(
        pool.clone(),
        clock.clone(),
        config.mail_limits(),
        config.retention(),
        std::time::Duration::from_secs(15),
        config.mail_out(),
        stopped,
    ));
    let state = web::AppState::new(pool.clone(), clock, config.clone());
    let app = web::router(state);
    let bound = listener.local_addr()?;
    let shutdown = shutdown_signal();
    print_banner(config, bound, show_demo, started);
    let served = web::serve(listener, app, shutdown).await;
    let _ = stop.send(true);
    if let Err(e) = jobs.await {
        tracing::warn!(error = %e, "job loop ended abnormally");
    }
    if let Some(smtp) = smtp
        && let Err(e) = smtp.await
    {
        tracing::warn!(error = %e, "SMTP listener ended abnormally");
    }
    served?;
    Ok(())
}

#[allow(clippy::print_stdout)]
fn print_banner(config: &Config, bound: SocketAddr, show_demo: bool, started: std::time::Instant) {
    let url = match &config.base_url {
        Some(_) => config.public_url(),
        None => format!("http://{bound}"),
    };
    let mut text = format!(
        "\nUnitrack is running at {url}  (started in {:.1} s)\n",
        started.elapsed().as_secs_f64()
    );
    if show_demo {
        text.push_str(&format!(
            "\nDemo sign-ins (password for all: {}):\n",
            demo::PASSWORD
        ));
        for (email, _, what) in demo::USERS {
            text.push_str(&format!("  {email:<24} {what}\n"));
        }
    }
    text.push_str("\nStop with Ctrl-C.\n");
    println!("{text}");
}
