//! The `creditd` command line: serve, migrate, verify, keys.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use creditd_store::Store;

use crate::app::{connect_stripe, serve, AppState};
use crate::billing::packages::{self, PackageSpec};
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
    /// Manage the credit packages the app sells.
    #[command(subcommand)]
    Packages(PackagesCommand),
    /// Measure the spend path against the naive design on its own temporary databases.
    Bench(crate::bench::BenchArgs),
}

#[derive(Subcommand, Debug)]
pub enum PackagesCommand {
    /// Create a package: `--price 500 --currency usd` (minor units), or `--stripe-price price_…`.
    Create {
        #[arg(long)]
        name: String,
        /// Credits the package grants (decimal, up to 6 places).
        #[arg(long)]
        credits: String,
        /// Price in minor units of the currency (500 = 5.00 usd).
        #[arg(long, requires = "currency", conflicts_with = "stripe_price")]
        price: Option<i64>,
        #[arg(long, requires = "price")]
        currency: Option<String>,
        /// An existing one-time Stripe Price (needs STRIPE_SECRET_KEY).
        #[arg(long)]
        stripe_price: Option<String>,
    },
    /// List packages, archived ones included.
    List,
    /// Stop selling a package (`pkg_…`).
    Archive { id: String },
}

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// Address to listen on [env: CREDITD_LISTEN] [default: 127.0.0.1:8080]
    #[arg(long)]
    pub listen: Option<String>,
    /// Where browsers reach creditd [env: CREDITD_PUBLIC_URL] [default: http://LISTEN]
    #[arg(long)]
    pub public_url: Option<String>,
    /// Where the built-in Stripe sandbox listens when no STRIPE_SECRET_KEY is set
    /// [env: CREDITD_SANDBOX_LISTEN] [default: 127.0.0.1:12111]
    #[arg(long)]
    pub sandbox_listen: Option<String>,
    /// Credits granted to each new customer [env: CREDITD_SIGNUP_BONUS] [default: 5]
    #[arg(long)]
    pub signup_bonus: Option<String>,
    /// Default hold TTL in seconds [env: CREDITD_HOLD_TTL_SECONDS] [default: 300]
    #[arg(long)]
    pub hold_ttl_seconds: Option<String>,
    /// Most writes applied in one transaction [env: CREDITD_WRITE_BATCH_SIZE] [default: 256]
    #[arg(long)]
    pub write_batch_size: Option<String>,
    /// How long a batch waits for more writes, in microseconds
    /// [env: CREDITD_WRITE_BATCH_WINDOW_US] [default: 1000]
    #[arg(long)]
    pub write_batch_window_us: Option<String>,
    /// Writes allowed to wait before 503 `overloaded` [env: CREDITD_WRITE_QUEUE_CAPACITY] [default: 8192]
    #[arg(long)]
    pub write_queue_capacity: Option<String>,
    /// Seconds a verified API key is trusted without a database lookup
    /// [env: CREDITD_API_KEY_CACHE_SECONDS] [default: 0, off]
    #[arg(long)]
    pub api_key_cache_seconds: Option<String>,
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
            add("public_url", &serve.public_url);
            add("sandbox_listen", &serve.sandbox_listen);
            add("signup_bonus", &serve.signup_bonus);
            add("hold_ttl_seconds", &serve.hold_ttl_seconds);
            add("write_batch_size", &serve.write_batch_size);
            add("write_batch_window_us", &serve.write_batch_window_us);
            add("write_queue_capacity", &serve.write_queue_capacity);
            add("api_key_cache_seconds", &serve.api_key_cache_seconds);
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
    if let Commands::Bench(args) = &cli.command {
        return crate::bench::run(args).await;
    }
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
            let (stripe, sandbox) = connect_stripe(&config).await?;
            match &sandbox {
                Some(sandbox) => {
                    println!(
                        "Stripe: built-in sandbox at {} (no STRIPE_SECRET_KEY set)",
                        sandbox.base_url
                    );
                    println!(
                        "  webhook secret {}; pay with test card 4242 4242 4242 4242",
                        stripe.webhook_secrets[0]
                    );
                }
                None => println!("Stripe: live API with the configured STRIPE_SECRET_KEY"),
            }
            let state = AppState::new(store.clone(), Clock::System, config.settings.clone(), stripe);
            serve(state, config.listen).await?;
            if let Some(sandbox) = sandbox {
                sandbox.shutdown().await;
            }
        }
        Commands::Bench(_) => unreachable!("handled before the database is opened"),
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
        Commands::Packages(command) => return packages_command(&store, &config, command, now).await,
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

async fn packages_command(store: &Store, config: &Config, command: PackagesCommand, now: i64) -> anyhow::Result<i32> {
    match command {
        PackagesCommand::Create {
            name,
            credits,
            price,
            currency,
            stripe_price,
        } => {
            let credits = creditd_domain::Credits::parse(&credits).map_err(|e| anyhow::anyhow!("--credits {e}"))?;
            // Only a named Stripe Price needs Stripe; the sandbox lives inside `serve`.
            let client = match (&stripe_price, &config.stripe) {
                (
                    Some(_),
                    crate::config::StripeMode::Stripe {
                        secret_key, api_base, ..
                    },
                ) => Some(creditd_stripe::client::StripeClient::new(secret_key, api_base.clone())?),
                _ => None,
            };
            let spec = PackageSpec {
                name,
                credits,
                price: price.zip(currency),
                stripe_price,
            };
            match packages::create(store, client.as_ref(), spec, now).await {
                Ok(package) => println!(
                    "created {} {}: {} credits for {}",
                    package.id,
                    package.name,
                    package.credits,
                    creditd_domain::money::display(package.price, &package.currency)
                ),
                Err((field, message)) => {
                    eprintln!("--{}: {message}", field.replace('_', "-"));
                    return Ok(1);
                }
            }
        }
        PackagesCommand::List => {
            for p in store.packages(true).await? {
                let state = if p.active { "active" } else { "archived" };
                let price = creditd_domain::money::display(p.price, &p.currency);
                println!("{}\t{}\t{} credits\t{price}\t{state}", p.id, p.name, p.credits);
            }
        }
        PackagesCommand::Archive { id } => {
            if !store.archive_package(&id).await? {
                eprintln!("no active package {id}");
                return Ok(1);
            }
            println!("archived {id}");
        }
    }
    Ok(0)
}
