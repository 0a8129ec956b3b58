//! `aksnet policy eval|explain`: the NetworkPolicy model's verdicts for a probe file, with
//! reasons, without touching the kernel (docs/policy.md). Thin: everything is in
//! aksnet-policy.
//!
//! Exit status: 0 every verdict as expected; 1 a verdict differs from the file's `expect`
//! table; 2 unusable input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aksnet_policy::eval::{Connection, Endpoint};
use aksnet_policy::probe::{self, Scenario};
use aksnet_policy::Protocol;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(clap::Subcommand, Debug)]
pub enum PolicyCommand {
    /// Every verdict of a probe file (every ordered pair of endpoints × probe), with reasons.
    Eval {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Why one connection is allowed or denied ("why is my pod blocked?").
    Explain {
        file: PathBuf,
        /// Source: ns/pod or external:<name>.
        #[arg(long)]
        from: String,
        /// Destination: ns/pod or external:<name>.
        #[arg(long)]
        to: String,
        /// PORT/PROTOCOL, e.g. 80/TCP (protocol defaults to TCP).
        #[arg(long)]
        port: String,
        /// The step to look at (by name); default the last one.
        #[arg(long)]
        step: Option<String>,
    },
}

pub fn run(cmd: PolicyCommand) -> ExitCode {
    match cmd {
        PolicyCommand::Eval { file, format } => eval(&file, format),
        PolicyCommand::Explain {
            file,
            from,
            to,
            port,
            step,
        } => match explain_cmd(&file, &from, &to, &port, step.as_deref()) {
            Ok(lines) => {
                println!("{}", lines.join("\n"));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("aksnet policy explain: {e}");
                ExitCode::from(2)
            }
        },
    }
}

/// Reads and validates a probe file.
pub fn load(file: &Path) -> Result<Scenario, String> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|e| format!("{name}: {e}"))?;
    probe::parse(&name, &text).map_err(|e| e.to_string())
}

fn eval(file: &Path, format: Format) -> ExitCode {
    let scenario = match load(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("aksnet policy eval: {e}");
            return ExitCode::from(2);
        }
    };
    let report = probe::evaluate_scenario(&scenario);
    print_report(&report, format, "aksnet policy eval", 2)
}

/// Prints a probe report in `format`; exit 1 when an expectation is not met,
/// `render_failed` when the JSON cannot be rendered.
pub(crate) fn print_report(
    report: &probe::Report,
    format: Format,
    command: &str,
    render_failed: u8,
) -> ExitCode {
    match format {
        Format::Human => print!("{}", probe::render_human(report)),
        Format::Json => match serde_json::to_string_pretty(report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("{command}: {e}");
                return ExitCode::from(render_failed);
            }
        },
    }
    if report.mismatches() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn parse_port(s: &str) -> Result<(u16, Protocol), String> {
    let (p, proto) = s.split_once('/').unwrap_or((s, "TCP"));
    let port = p
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("--port {s:?}: the port must be 1-65535"))?;
    let proto = Protocol::parse(&proto.to_ascii_uppercase())
        .ok_or_else(|| format!("--port {s:?}: the protocol must be TCP, UDP or SCTP"))?;
    Ok((port, proto))
}

fn explain_cmd(
    file: &Path,
    from: &str,
    to: &str,
    port: &str,
    step: Option<&str>,
) -> Result<Vec<String>, String> {
    let (port, proto) = parse_port(port)?;
    let scenario = load(file)?;
    let step =
        match step {
            Some(n) => scenario.steps.iter().find(|s| s.name == n).ok_or_else(|| {
                format!("--step {n:?}: no step of that name in {}", file.display())
            })?,
            None => scenario
                .steps
                .last()
                .ok_or_else(|| format!("{}: no steps", file.display()))?,
        };
    let eps = probe::endpoints(step);
    let find = |flag: &str, who: &str| -> Result<(Endpoint, std::net::IpAddr), String> {
        eps.iter()
            .find(|(e, _)| e.label() == who)
            .copied()
            .ok_or_else(|| {
                format!(
                    "{flag} {who:?}: no pod or external of that name in step {}",
                    step.name
                )
            })
    };
    let (src, _) = find("--from", from)?;
    let (dst, dst_ip) = find("--to", to)?;
    let src_ip = match &src {
        Endpoint::Pod(p) => p.ip_like(dst_ip),
        Endpoint::External { ip, .. } | Endpoint::Node { ip, .. } => Some(*ip),
    }
    .ok_or_else(|| format!("--from {from:?} has no address of {to}'s family"))?;
    let conn = Connection::new(
        &step.cluster,
        &step.policies,
        (&src, src_ip),
        (&dst, dst_ip),
        port,
        proto,
    );
    Ok(conn.explain())
}
