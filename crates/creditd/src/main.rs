use clap::Parser;

#[tokio::main]
async fn main() {
    if let Err(e) = creditd::ops::logs::init() {
        eprintln!("error: configuration: {e}");
        std::process::exit(2);
    }
    let cli = creditd::cli::Cli::parse();
    match creditd::cli::run(cli).await {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
