//! Structured logs on stderr (`tracing`): `-v` debug, `-vv` trace, `-q` errors only;
//! `RUST_LOG` overrides.

use tracing_subscriber::EnvFilter;

pub fn init(verbose: u8, quiet: bool) {
    let level = if quiet {
        "error"
    } else {
        match verbose {
            0 => "info",
            1 => "debug",
            _ => "trace",
        }
    };
    let default =
        format!("{level},wasmtime=warn,cranelift=warn,hyper=warn,wasmtime_wasi_http=warn");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        .try_init();
}
