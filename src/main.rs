//! The `unitrack` binary: parse the command line, hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = unitrack::cli::Cli::parse();
    unitrack::cli::run(cli)
}
