//! The `creditd` command line: serve, migrate, verify, keys.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use creditd_store::Store;

use crate::app::{serve, AppState};
use crate::clock::Clock;
use crate::config::{Config, Flags};

#[derive(Parser, Debug)]
#[command(name = "creditd", version, about = "Prepaid credits and Stripe billing for AI apps")]
pub struct Cli {
    /// TOML configuration file [env: CREDITD_CONFIG]
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// sqlite:PATH or postgres://… [env: DATABASE_URL] [default: sqlite://creditd.db]
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Commands,
}

#[derive(Subcommand, Debug)]
pub enum Commands {
    /// Run the HTTP API (migrates first).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Check the ledger's invariants over the whole database; exits 1 naming what is off.
    Verify,
    /// Manage the app's secret API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// Address to listen on [env: CREDITD_LISTEN] [default: 127.0.0.1:8080]
    #[arg(long)]
    pub listen: Option<String>,
    /// Credits granted to each new customer [env: CREDITD_SIGNUP_BONUS] [default: 5]
    #[arg(long)]
    pub signup_bonus: Option<String>,
    /// Default hold TTL in seconds [env: CREDITD_HOLD_TTL_SECONDS] [default: 300]
    #[arg(long)]
    pub hold_ttl_seconds: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a secret key; it is printed once, alone on the last line.
    Create {
        #[arg(long)]
        name: String,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id (`key_…`).
    Revoke { id: String },
}

impl Cli {
    fn flags(&self) -> Flags {
        let mut flags = Flags::new();
        let mut add = |key: &'static str, value: &Option<String>| {
            if let Some(v) = value {
                flags.push((key, v.clone()));
            }
        };
        add("database_url", &self.database_url);
        if let Commands::Serve(serve) = &self.command {
            add("listen", &serve.listen);
            add("signup_bonus", &serve.signup_bonus);
            add("hold_ttl_seconds", &serve.hold_ttl_seconds);
        }
        flags
    }
}

/// Hides a password in a database URL before printing it.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    let config = Config::load(cli.flags(), cli.config.as_deref()).map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let store = Store::open(&config.database_url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the database {}: {e}", redact(&config.database_url)))?;
    let now = creditd_store::unix_now();
    match cli.command {
        Commands::Serve(_) => {
            println!(
                "creditd {} listening on http://{}",
                env!("CARGO_PKG_VERSION"),
                config.listen
            );
            println!("database: {}", redact(&config.database_url));
            let keys = store.list_api_keys().await?;
            if keys.iter().all(|k| k.revoked.is_some()) {
                println!(
                    "no API key yet: create one with `creditd keys create --name my-app` (same database settings)"
                );
            }
            let state = AppState::new(store.clone(), Clock::System, config.settings);
            serve(state, config.listen).await?;
        }
        Commands::Migrate => {
            let applied = store.migrate().await?;
            println!("database is up to date ({applied} migrations applied now)");
        }
        Commands::Verify => {
            let report = store.verify().await?;
            let books = report.books;
            println!(
                "checked {} customers, {} grants, {} ledger entries",
                report.customers, report.grants, report.entries
            );
            println!(
                "books: issued {} − spent {} − expired {} = outstanding {}",
                books.issued, books.spent, books.expired, books.outstanding
            );
            if !report.is_clean() {
                for problem in &report.problems {
                    println!("PROBLEM {problem}");
                }
                return Ok(1);
            }
            println!("ledger OK");
        }
        Commands::Keys(KeysCommand::Create { name }) => {
            creditd_domain::validate::text(&name).map_err(|m| anyhow::anyhow!("--name {m}"))?;
            let created = store.create_api_key(&name, now).await?;
            println!(
                "created key {} ({name}); the secret is shown once, store it now:",
                created.key.id
            );
            println!("{}", created.secret);
        }
        Commands::Keys(KeysCommand::List) => {
            for key in store.list_api_keys().await? {
                let state = if key.revoked.is_some() { "revoked" } else { "active" };
                println!("{}\t{}\t…{}\t{state}", key.id, key.name, key.last4);
            }
        }
        Commands::Keys(KeysCommand::Revoke { id }) => {
            if !store.revoke_api_key(&id, now).await? {
                eprintln!("no active key {id}");
                return Ok(1);
            }
            println!("revoked {id}");
        }
    }
    store.close().await;
    Ok(0)
}
