//! The `aksnet-cni` binary: environment and stdin in, result or error JSON out
//! (SPEC.md section 2). Everything else is in the library.

use std::io::{Read, Write};
use std::process::ExitCode;

use aksnet_cni::arena::{Arena, ARENA_BYTES};

/// A bump arena: the process is short-lived (the `arena` module says why and what it
/// bounds).
#[global_allocator]
static ALLOCATOR: Arena<ARENA_BYTES> = Arena::new();

fn main() -> ExitCode {
    // stdout is the protocol channel: logs go to stderr only, and only when
    // asked for (libcni copies stderr through).
    if let Ok(filter) = std::env::var("AKSNET_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
    // The detached helper of an asynchronous DEL (see `remove_host_veth`).
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(aksnet_cni::DELETE_LINK_ARG) {
        return match (argv.get(2).and_then(|i| i.parse().ok()), argv.get(3)) {
            (Some(index), Some(name)) => match aksnet_cni::delete_link_if_named(index, name) {
                Ok(_) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            },
            _ => ExitCode::from(2),
        };
    }
    // A person, not a runtime (runtimes pass no argv): say what this is.
    if matches!(
        argv.get(1).map(String::as_str),
        Some("--version" | "--help" | "-h" | "-V")
    ) {
        eprintln!(
            "aksnet-cni {} — CNI plugin for AKS's legacy network models (modes: kubenet, nodesubnet)\n\
             CNI protocol versions supported: {}\n\
             It is run by a container runtime with CNI_COMMAND and friends in the environment \
             and the network configuration on stdin; see crates/aksnet-cni/README.md.",
            env!("CARGO_PKG_VERSION"),
            aksnet_cniproto::SUPPORTED_VERSIONS.join(", ")
        );
        return ExitCode::SUCCESS;
    }
    let started = std::time::Instant::now();
    let mut stdin = Vec::new();
    // Read one byte past the cap, so that a larger input is detected without
    // being read whole (issue 10, item 7).
    let cap = aksnet_cni::MAX_STDIN_BYTES;
    let read = std::io::stdin()
        .take(cap as u64 + 1)
        .read_to_end(&mut stdin);
    let outcome = match read {
        Ok(n) if n > cap => Err(aksnet_cni::error::PluginError::StdinTooLarge {
            limit_mib: cap >> 20,
        }),
        Ok(_) => aksnet_cni::run(|k| std::env::var(k).ok(), &stdin),
        Err(e) => Err(aksnet_cni::error::PluginError::Stdin(e)),
    };
    let env = |k: &str| std::env::var(k).ok();
    aksnet_cni::verblog::record(&aksnet_cni::verblog::Call {
        env: &env,
        stdin: &stdin,
        outcome: outcome.as_ref().map(Option::as_ref),
        elapsed: started.elapsed(),
    });
    let mut out = std::io::stdout().lock();
    match outcome {
        Ok(Some(v)) => {
            let _ = writeln!(out, "{v}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            let mut err = e.to_cni_error();
            if let Some(v) = aksnet_cni::config::peek_version(&stdin) {
                err = err.with_version(&v);
            }
            let _ = writeln!(out, "{}", err.to_json());
            ExitCode::FAILURE
        }
    }
}
