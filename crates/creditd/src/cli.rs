//! The `creditd` command line: serve, migrate, verify, keys, and the operator's commands.

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
    /// Print JSON instead of text (customers, grants, usage)
    #[arg(long, global = true)]
    pub json: bool,
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
    /// Recover missed Stripe webhooks from Stripe's events API and re-converge recent
    /// payments (refunds, disputes). In sandbox mode, `creditd serve` must be running.
    Reconcile {
        /// How far back: `3d`, `12h`, `30m`, `90s` (at most 30 days).
        #[arg(long, default_value = "3d")]
        since: String,
    },
    /// Manage the credit packages the app sells.
    #[command(subcommand)]
    Packages(PackagesCommand),
    /// Measure the spend path against the naive design on its own temporary databases.
    Bench(crate::bench::BenchArgs),
    /// Manage subscription plans.
    #[command(subcommand)]
    Plans(PlansCommand),
    /// Manage the operator dashboard's admins.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Find customers and show one in full.
    #[command(subcommand)]
    Customers(crate::operator::CustomersCommand),
    /// Grant credits (an admin adjustment).
    #[command(subcommand)]
    Grants(crate::operator::GrantsCommand),
    /// Correct usage: deduct credits (an admin adjustment).
    #[command(subcommand)]
    Usage(crate::operator::UsageCommand),
    /// Manage the app's webhook endpoints (signed outbound events).
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
}

#[derive(Subcommand, Debug)]
pub enum WebhooksCommand {
    /// Register an endpoint; prints its id and, once, its signing secret.
    Create {
        #[arg(long)]
        url: String,
        /// Comma-separated event types, or `*` for all.
        #[arg(long, default_value = "*", value_delimiter = ',')]
        events: Vec<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// List endpoints: id, url, events, enabled.
    List,
}

#[derive(Subcommand, Debug)]
pub enum PlansCommand {
    /// Create a plan: credits granted each paid period at a recurring price (minor units).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        credits: String,
        #[arg(long)]
        price: i64,
        #[arg(long)]
        currency: String,
        /// day, week, month or year
        #[arg(long, default_value = "month")]
        interval: String,
        /// Unused allowance carried into the next period, at most this much.
        #[arg(long, default_value = "0")]
        rollover_cap: String,
    },
    /// List plans, archived ones included.
    List,
    /// Stop offering a plan (`plan_…`); existing subscriptions go on.
    Archive { id: String },
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create an admin for the dashboard at /admin (or set a new password for an existing one).
    CreateUser {
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
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
    /// Import packages from Stripe: one-time Prices whose Price or Product has `credits_amount`
    /// metadata; update changed ones, archive removed ones (needs Stripe, or a running `serve`
    /// for its sandbox).
    Sync,
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
    /// [env: CREDITD_WRITE_BATCH_WINDOW_US] [default: 0, only what is queued]
    #[arg(long)]
    pub write_batch_window_us: Option<String>,
    /// Writes allowed to wait before 503 `overloaded` [env: CREDITD_WRITE_QUEUE_CAPACITY] [default: 8192]
    #[arg(long)]
    pub write_queue_capacity: Option<String>,
    /// Seconds a verified API key stays cached in memory; revocations still reach every
    /// replica within a second [env: CREDITD_API_KEY_CACHE_SECONDS] [default: 300; 0 off]
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
        Commands::Reconcile { since } => {
            let seconds = parse_duration(&since).map_err(|e| anyhow::anyhow!("--since {e}"))?;
            let stripe = cli_stripe(&config)?;
            let state = AppState::new(store.clone(), Clock::System, config.settings.clone(), stripe);
            let report = crate::billing::reconcile::reconcile(&state, seconds)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            for change in &report.changes {
                println!("{change}");
            }
            println!(
                "events: {} seen, {} recovered, {} failing; payments: {} checked, {} changed",
                report.events_seen,
                report.events_recovered,
                report.events_failed,
                report.payments_checked,
                report.payments_changed
            );
            return Ok(if report.events_failed > 0 { 1 } else { 0 });
        }
        Commands::Plans(command) => return plans_command(&store, command, now).await,
        Commands::Customers(command) => return crate::operator::customers(&store, command, cli.json, now).await,
        Commands::Grants(command) => return crate::operator::grants(&store, command, cli.json, now).await,
        Commands::Usage(command) => return crate::operator::usage(&store, command, cli.json, now).await,
        Commands::Packages(command) => return packages_command(&store, &config, command, now).await,
        Commands::Admin(AdminCommand::CreateUser { email, password_stdin }) => {
            return create_admin(&store, &email, password_stdin, now).await
        }
        Commands::Webhooks(command) => return webhooks(&store, command, now).await,
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
            match packages::create(store, client.as_ref(), spec, now)
                .await
                .map_err(|r| (r.field, r.message))
            {
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
        PackagesCommand::Sync => {
            let stripe = cli_stripe(config)?;
            let report = crate::billing::package_sync::sync(store, &stripe.client, now)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            for line in report.lines() {
                println!("{line}");
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

/// `3d`, `12h`, `30m`, `90s` or plain seconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 3d, 12h, 30m or 90s"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?} has an unknown unit; use d, h, m or s")),
    };
    n.checked_mul(scale)
        .filter(|s| *s <= crate::billing::reconcile::MAX_WINDOW_SECONDS)
        .ok_or_else(|| format!("{text:?} is longer than Stripe's 30 days"))
}

/// The Stripe client for a one-shot command: real Stripe, or the sandbox of a running `serve`.
fn cli_stripe(config: &Config) -> anyhow::Result<crate::billing::Stripe> {
    let (client, secrets) = match &config.stripe {
        crate::config::StripeMode::Stripe {
            secret_key,
            api_base,
            webhook_secrets,
        } => (
            creditd_stripe::client::StripeClient::new(secret_key, api_base.clone())?,
            webhook_secrets.clone(),
        ),
        crate::config::StripeMode::Sandbox { listen, .. } => {
            let base = format!("http://{listen}/");
            (
                creditd_stripe::client::StripeClient::new(crate::app::SANDBOX_SECRET_KEY, Some(base))?,
                Vec::new(),
            )
        }
    };
    Ok(crate::billing::Stripe {
        client,
        webhook_secrets: secrets,
        public_url: config.public_url.clone(),
    })
}

async fn plans_command(store: &Store, command: PlansCommand, now: i64) -> anyhow::Result<i32> {
    match command {
        PlansCommand::Create {
            name,
            credits,
            price,
            currency,
            interval,
            rollover_cap,
        } => {
            let credits = creditd_domain::Credits::parse(&credits).map_err(|e| anyhow::anyhow!("--credits {e}"))?;
            let rollover_cap =
                creditd_domain::Credits::parse(&rollover_cap).map_err(|e| anyhow::anyhow!("--rollover-cap {e}"))?;
            let spec = crate::billing::plans::PlanSpec {
                name,
                credits,
                price: Some(price),
                currency: Some(currency),
                interval,
                rollover_cap,
                free: false,
                features: Default::default(),
            };
            match crate::billing::plans::create(store, spec, now).await {
                Ok(p) => println!(
                    "created {} {}: {} credits per {} for {}",
                    p.id,
                    p.name,
                    p.credits,
                    p.interval,
                    creditd_domain::money::display(p.price, &p.currency)
                ),
                Err((field, message)) => {
                    eprintln!("--{}: {message}", field.replace('_', "-"));
                    return Ok(1);
                }
            }
        }
        PlansCommand::List => {
            for p in store.plans(true).await? {
                let state = if p.active { "active" } else { "archived" };
                let price = creditd_domain::money::display(p.price, &p.currency);
                println!(
                    "{}\t{}\t{} credits/{}\t{price}\trollover {}\t{state}",
                    p.id, p.name, p.credits, p.interval, p.rollover_cap
                );
            }
        }
        PlansCommand::Archive { id } => {
            if !store.archive_plan(&id).await? {
                eprintln!("no active plan {id}");
                return Ok(1);
            }
            println!("archived {id}");
        }
    }
    Ok(0)
}

/// Reads a password: one line of stdin, or a prompt with echo turned off on a terminal.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    let prompt = !from_stdin && stdin.is_terminal();
    let echo = |on: bool| {
        if prompt {
            // Best effort: without `stty` the password is echoed, as with many CLIs.
            let _ = std::process::Command::new("stty")
                .arg(if on { "echo" } else { "-echo" })
                .stdin(std::process::Stdio::inherit())
                .status();
        }
    };
    if prompt {
        eprint!("password for the new admin: ");
        std::io::stderr().flush().ok();
    }
    echo(false);
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    echo(true);
    if prompt {
        eprintln!();
    }
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

async fn create_admin(store: &Store, email: &str, password_stdin: bool, now: i64) -> anyhow::Result<i32> {
    let email = match crate::admin::auth::check_email(email) {
        Ok(e) => e,
        Err(m) => {
            eprintln!("--email: {m}");
            return Ok(1);
        }
    };
    let password = read_password(password_stdin)?;
    if let Err(m) = crate::admin::auth::check_new_password(&password) {
        eprintln!("{m}");
        return Ok(1);
    }
    let hash = tokio::task::spawn_blocking(move || crate::admin::auth::hash_password(&password))
        .await?
        .map_err(|e| anyhow::anyhow!(e))?;
    let (admin, created) = store.upsert_admin_user(&email, &hash, now).await?;
    if created {
        println!("created admin {} ({}); log in at /admin/login", admin.email, admin.id);
    } else {
        println!(
            "set a new password for admin {}; their sessions were closed",
            admin.email
        );
    }
    Ok(0)
}

async fn webhooks(store: &Store, command: WebhooksCommand, now: i64) -> anyhow::Result<i32> {
    match command {
        WebhooksCommand::Create {
            url,
            events,
            description,
        } => {
            let url = crate::outbound::check_url(&url).map_err(|m| anyhow::anyhow!("--url {m}"))?;
            let events = crate::outbound::check_events(events).map_err(|m| anyhow::anyhow!("--events {m}"))?;
            if let Some(d) = &description {
                creditd_domain::validate::text(d).map_err(|m| anyhow::anyhow!("--description {m}"))?;
            }
            let new = creditd_store::NewEndpoint {
                url,
                events,
                description,
                secret: crate::outbound::sign::new_secret(),
            };
            let endpoint = store.create_endpoint(&new, now).await?;
            println!(
                "created endpoint {} for {}; its signing secret is shown once, store it now:",
                endpoint.id, endpoint.url
            );
            println!("{}", endpoint.secret);
        }
        WebhooksCommand::List => {
            for e in store.endpoints().await? {
                let state = if e.enabled { "enabled" } else { "disabled" };
                println!("{}\t{}\t{}\t{state}", e.id, e.url, e.events.join(","));
            }
        }
    }
    store.close().await;
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        assert_eq!(super::parse_duration("3d"), Ok(259_200));
        assert_eq!(super::parse_duration("90s"), Ok(90));
        assert_eq!(super::parse_duration("15"), Ok(15));
        assert!(super::parse_duration("31d").is_err());
        assert!(super::parse_duration("3w").is_err());
        assert!(super::parse_duration("d").is_err());
    }
}
