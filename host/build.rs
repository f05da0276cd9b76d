//! Builds the SentinelOne plugin component (the workspace's root package) for `wasm32-wasip2`
//! and hands it to the host crate to embed as the built-in plugin.
//!
//! * `DBAUDIT_PLUGIN_WASM=/path/to/component.wasm` skips the nested build and embeds that file.
//! * Otherwise: `cargo build --profile wasm --target wasm32-wasip2 -p dbaudit-sentinelone` in a
//!   separate target directory (`<workspace>/target/plugin-build`), installing the target with
//!   rustup when it is missing.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ lives in the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));

    println!("cargo:rerun-if-env-changed=DBAUDIT_PLUGIN_WASM");
    for p in ["src", "wit", "Cargo.toml", "Cargo.lock", "plugin.toml"] {
        println!("cargo:rerun-if-changed={}", workspace.join(p).display());
    }
    println!("cargo:rerun-if-changed=build.rs");

    let wasm = match env::var_os("DBAUDIT_PLUGIN_WASM") {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            if !p.is_file() {
                panic!("DBAUDIT_PLUGIN_WASM={} is not a file", p.display());
            }
            println!("cargo:rerun-if-changed={}", p.display());
            p
        }
        _ => build_plugin(&workspace),
    };
    std::fs::copy(&wasm, out_dir.join("plugin.wasm"))
        .unwrap_or_else(|e| panic!("copy {} to OUT_DIR: {e}", wasm.display()));
}

/// Environment variables the outer cargo sets for build scripts that would make the nested
/// cargo misbehave (wrong target dir, clippy as rustc, host rustflags on a wasm build...).
fn scrub(cmd: &mut Command) {
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let drop = (key.starts_with("CARGO_") && key != "CARGO_HOME")
            || matches!(
                key,
                "RUSTFLAGS"
                    | "RUSTC"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "RUSTDOC"
                    | "RUSTC_LINKER"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "PROFILE"
                    | "OPT_LEVEL"
                    | "DEBUG"
                    | "NUM_JOBS"
            );
        if drop {
            cmd.env_remove(key);
        }
    }
}

fn ensure_target() {
    let fix = format!("rustup target add {TARGET}");
    let listed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match listed {
        Ok(out) if out.status.success() => {
            if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == TARGET) {
                return;
            }
            println!("cargo:warning=installing the {TARGET} target: {fix}");
            let ok = Command::new("rustup")
                .args(["target", "add", TARGET])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok {
                panic!("the {TARGET} target is missing and `{fix}` failed; run `{fix}` yourself, then build again");
            }
        }
        _ => panic!(
            "cannot list the installed Rust targets (is rustup installed?); the plugin needs the {TARGET} target: run `{fix}`, then build again (or set DBAUDIT_PLUGIN_WASM to a prebuilt component)"
        ),
    }
}

fn build_plugin(workspace: &Path) -> PathBuf {
    ensure_target();
    let target_dir = workspace.join("target").join("plugin-build");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    scrub(&mut cmd);
    cmd.args([
        "build",
        "--profile",
        "wasm",
        "--target",
        TARGET,
        "-p",
        "dbaudit-sentinelone",
    ])
    .arg("--manifest-path")
    .arg(workspace.join("Cargo.toml"))
    .arg("--target-dir")
    .arg(&target_dir)
    .current_dir(workspace);
    let out = target_dir
        .join(TARGET)
        .join("wasm")
        .join("dbaudit_sentinelone.wasm");
    let status = cmd.status();
    match status {
        Ok(s) if s.success() && out.is_file() => out,
        other => {
            let why = match other {
                Ok(s) => format!("exited with {s}"),
                Err(e) => format!("could not start: {e}"),
            };
            panic!(
                "building the plugin component failed ({why}).\n\
                 Command: cargo build --profile wasm --target {TARGET} -p dbaudit-sentinelone --manifest-path {} --target-dir {}\n\
                 Fix the plugin build, or set DBAUDIT_PLUGIN_WASM to a prebuilt component.",
                workspace.join("Cargo.toml").display(),
                target_dir.display()
            )
        }
    }
}
