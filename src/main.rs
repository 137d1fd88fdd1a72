//! The `unitrack` binary: parse the command line, hand over to the library.

use clap::Parser;

/// mimalloc instead of glibc malloc: rendering a page allocates a lot of short-lived strings,
/// and glibc's allocator was a tenth of the server's CPU time under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = unitrack::cli::Cli::parse();
    unitrack::cli::run(cli)
}
